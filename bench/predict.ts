// Throughput of `ruledit eval` (decode + preprocess overlapped with inference) against ONNX Runtime
// alone on tensors decoded beforehand, in the same run, and of `eval --cache-pixels` once its
// cache is filled (a data set evaluated again). Target: ratio >= 0.85.
// Usage: npx tsx bench/predict.ts [MODEL_DIR] [DATASET] [--batch N] [--rounds R]
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { batches } from '../src/data/batches.ts';
import { DEFAULT_BATCH } from '../src/runtime/session.ts';
import { openDataset } from '../src/data/dataset.ts';
import { loadPreprocess } from '../src/data/preprocess.ts';
import { evaluate } from '../src/eval/evaluate.ts';
import { loadModel } from '../src/onnx/model.ts';
import { Runner } from '../src/runtime/session.ts';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args.splice(i, 2)[1]) : fallback;
};
const batchSize = flag('--batch', DEFAULT_BATCH);
const rounds = flag('--rounds', 3);
const shared = resolve(import.meta.dirname, '../../shared');
const modelDir = args[0] ?? join(shared, 'models/mobilenetv2-imagenet');
const dataPath = args[1] ?? join(shared, 'data/imagenet-sample');
if (!existsSync(modelDir) || !existsSync(dataPath)) {
  console.error(`bench/predict: ${modelDir} or ${dataPath} is missing (../shared absent?)`);
  process.exit(2);
}

const model = await loadModel(join(modelDir, 'model.onnx'));
const spec = await loadPreprocess(join(modelDir, 'preprocess.json'));
const dataset = await openDataset(dataPath);
const n = dataset.items.length;

// Baseline: every batch decoded up front, then ONNX Runtime alone.
const decoded: Awaited<ReturnType<typeof batches>['next']> extends unknown
  ? { data: Float32Array; dims: number[] }[]
  : never = [];
for await (const b of batches(dataset.items, spec, { batchSize })) decoded.push(b);
const runner = await Runner.create(model);
await runner.run(decoded[0].data, decoded[0].dims); // warm-up

async function ortAlone(): Promise<number> {
  const t = performance.now();
  for (const b of decoded) await runner.run(b.data, b.dims);
  return (performance.now() - t) / 1000;
}

// Ours: the eval pipeline end to end (files -> report), decoding every image, and reading the
// pixels a first run left in the cache.
const pixelCache = await mkdtemp(join(tmpdir(), 'ruledit-pixels-'));
const top1: Record<string, number> = {};
async function ours(cache?: string): Promise<number> {
  const t = performance.now();
  top1[cache ? 'cached' : 'decoded'] = (
    await evaluate({ model, spec }, dataset, { batchSize, pixelCache: cache })
  ).top1;
  return (performance.now() - t) / 1000;
}
await ours(pixelCache);

// Timings on 2 shared cores are noisy: interleave them and compare medians.
const [a, b, c]: number[][] = [[], [], []];
for (let r = 0; r < rounds; r++) {
  a.push(await ortAlone());
  b.push(await ours());
  c.push(await ours(pixelCache));
}
await runner.release();
await rm(pixelCache, { recursive: true });
if (top1.cached !== top1.decoded) throw new Error(`cached pixels give another top-1: ${top1}`);
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const [ortSeconds, evalSeconds, cachedSeconds] = [median(a), median(b), median(c)];

console.log(
  `images: ${n}, batch ${batchSize}, top-1 ${top1.decoded.toFixed(1)}% (the same with cached pixels), median of ${rounds} rounds`,
);
console.log(`ONNX Runtime alone (pre-decoded): ${(n / ortSeconds).toFixed(1)} img/s`);
console.log(`ruledit eval (decode overlapped):  ${(n / evalSeconds).toFixed(1)} img/s`);
console.log(`ruledit eval --cache-pixels:       ${(n / cachedSeconds).toFixed(1)} img/s`);
console.log(`ratio eval / ORT-alone: ${(ortSeconds / evalSeconds).toFixed(3)} (target >= 0.85)`);
console.log(
  `ratio eval --cache-pixels / ORT-alone: ${(ortSeconds / cachedSeconds).toFixed(3)} (target >= 0.85)`,
);
