// What the benchmarks share: command-line flags, and the vehicles-on-snow problem on ../shared
// (the real MobileNetV2, its preprocessing, the street exemplar with road -> snow texture).
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadExemplar } from '../src/concepts/exemplar.ts';
import { loadPreprocess } from '../src/data/preprocess.ts';
import { loadModel } from '../src/onnx/model.ts';

/** The value after `--name` on the command line, or the fallback. */
export function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

export const shared = resolve(import.meta.dirname, '../../shared');

export async function snowProblem(bench: string) {
  if (!existsSync(shared)) {
    console.error(`${bench}: ../shared is absent; the benchmarks need its model and photos`);
    process.exit(2);
  }
  const model = await loadModel(join(shared, 'models/mobilenetv2-imagenet/model.onnx'));
  const spec = await loadPreprocess(join(shared, 'models/mobilenetv2-imagenet/preprocess.json'));
  const ex = join(shared, 'data/exemplars');
  const exemplar = await loadExemplar(
    join(ex, 'street-road/image.png'),
    join(ex, 'street-road/road_mask.png'),
    { texture: join(ex, 'snow_texture.jpg') },
    spec,
  );
  return { model, spec, exemplar };
}
