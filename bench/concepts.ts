// Concept index over a data set with a real segmentation model: images/s of the whole pipeline
// (decode, stretch, ONNX Runtime, softmax, resize, PNG masks) against ONNX Runtime alone on
// tensors prepared beforehand, in the same run; then how many photos contain each concept.
// The index is left in the default cache ($RULEDIT_CACHE or ~/.cache/ruledit) for later use.
// Usage: npx tsx bench/concepts.ts [MODEL] [DATASET] [--limit N] [--cached]
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildConceptIndex, conceptCounts } from '../src/concepts/concept-index.ts';
import { segmentationAssets } from '../src/concepts/segment.ts';
import { describeSkips } from '../src/concepts/skips.ts';
import { openDataset } from '../src/data/dataset.ts';
import { loadModel } from '../src/onnx/model.ts';
import { Runner } from '../src/runtime/session.ts';

const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args.splice(i, 1).length > 0 : false;
};
const value = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args.splice(i, 2)[1]) : fallback;
};
const cached = flag('--cached');
const limit = value('--limit', Infinity);
const shared = resolve(import.meta.dirname, '../../shared');
const model = args[0] ?? join(shared, 'models/deeplabv3-pascal/model.onnx');
let data = args[1] ?? join(shared, 'data/imagenet-sample');
if (!existsSync(model) || !existsSync(data)) {
  console.error(`bench/concepts: ${model} or ${data} is missing (../shared absent?)`);
  process.exit(2);
}
const dataset = await openDataset(data);
if (limit < dataset.items.length) {
  data = join(await mkdtemp(join(tmpdir(), 'ruledit-bench-')), 'subset.txt');
  await writeFile(
    data,
    dataset.items
      .slice(0, limit)
      .map((i) => i.file)
      .join('\n'),
  );
}
const n = Math.min(limit, dataset.items.length);

// Baseline: ONNX Runtime alone on one prepared tensor, repeated.
const { spec } = await segmentationAssets(model);
const runner = await Runner.create(await loadModel(model));
const [h, w] = spec.size;
const x = new Float32Array(3 * h * w).map((_, i) => Math.sin(i) * 0.5);
await runner.run(x, [1, 3, h, w]);
const reps = 10;
let t = performance.now();
for (let r = 0; r < reps; r++) await runner.run(x, [1, 3, h, w]);
const ortRate = reps / ((performance.now() - t) / 1000);
await runner.release();

t = performance.now();
let indexFile = '';
const index = await buildConceptIndex(
  data,
  { kind: 'segmentation', model },
  {
    refresh: !cached,
    onIndexFile: (f) => (indexFile = f),
    onProgress: (done) => {
      if (done % 100 === 0) process.stderr.write(`${done}/${n}\n`);
    },
  },
);
const seconds = (performance.now() - t) / 1000;
const rate = n / seconds;
console.log(`${n} images in ${seconds.toFixed(1)} s: ${rate.toFixed(2)} images/s`);
console.log(
  `ONNX Runtime alone: ${ortRate.toFixed(2)} images/s; pipeline / ORT alone = ${(rate / ortRate).toFixed(2)}`,
);
console.log(`${index.images.length} of ${n} images contain at least one concept (${index.source})`);
for (const c of conceptCounts(index)) console.log(`${c.concept.padEnd(12)} ${c.images}`);
for (const line of describeSkips(index.skipped ?? [])) console.log(line);
console.log(`index: ${indexFile}`);
