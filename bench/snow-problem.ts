// What the benchmarks share: command-line flags, and the vehicles-on-snow problem on ../shared
// (the real MobileNetV2, its preprocessing, the street exemplar with road -> snow texture).
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadExemplar, loadExemplars } from '../src/concepts/exemplar.ts';
import { loadPreprocess, type PreprocessSpec } from '../src/data/preprocess.ts';
import { loadModel } from '../src/onnx/model.ts';

/** The value after `--name` on the command line, or the fallback. */
export function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

export const shared = resolve(import.meta.dirname, '../../shared');

/** Stops a benchmark that needs ../shared, with a message, where it is absent. */
export function requireShared(bench: string): void {
  if (existsSync(shared)) return;
  console.error(`${bench}: ../shared is absent; the benchmarks need its model and photos`);
  process.exit(2);
}

/** The street scene and its road mask. */
export const STREET = {
  image: join(shared, 'data/exemplars/street-road/image.png'),
  mask: join(shared, 'data/exemplars/street-road/road_mask.png'),
};

/** The street exemplar once per image of the snowy_ground style (what `edit --style` makes). */
export const snowyStreet = (spec: PreprocessSpec) =>
  loadExemplars(
    STREET.image,
    STREET.mask,
    { style: join(shared, 'data/styles/snowy_ground') },
    spec,
  );

/** The problem on a real ImageNet model of ../shared/models (`--model`, default MobileNetV2). */
export async function snowProblem(bench: string) {
  requireShared(bench);
  const dir = join(shared, 'models', flag('--model', 'mobilenetv2-imagenet'));
  const model = await loadModel(join(dir, 'model.onnx'));
  const spec = await loadPreprocess(join(dir, 'preprocess.json'));
  const exemplar = await loadExemplar(
    STREET.image,
    STREET.mask,
    { texture: join(shared, 'data/exemplars/snow_texture.jpg') },
    spec,
  );
  return { model, spec, exemplar };
}
