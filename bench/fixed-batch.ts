// A torchvision export with its batch fixed at 1 (torch.onnx.export's default), evaluated in
// batches of DEFAULT_BATCH (ruledit makes the batch dynamic in the session's copy) against --batch 1, the
// only way it ran before. npx tsx bench/fixed-batch.ts [--model resnet18] [--images 200]
import { join } from 'node:path';
import { loadClassifier } from '../src/classifier.ts';
import { openDataset } from '../src/data/dataset.ts';
import { evaluate } from '../src/eval/evaluate.ts';
import { flag, shared } from './snow-problem.ts';
import { DEFAULT_BATCH } from '../src/runtime/session.ts';

const name = flag('--model', 'resnet18');
const c = await loadClassifier(join(shared, `models/torchvision/${name}.onnx`), {
  preprocess: 'imagenet-torchvision',
});
const data = await openDataset(join(shared, 'data/imagenet-sample'));
const some = { ...data, items: data.items.slice(0, Number(flag('--images', '200'))) };
const time = async (batchSize: number) => {
  const t = performance.now();
  await evaluate(c, some, { batchSize });
  return (performance.now() - t) / 1000;
};
await time(DEFAULT_BATCH); // warm-up: decoding caches, sessions
const [batched, single]: number[][] = [[], []];
for (let r = 0; r < 3; r++) {
  batched.push(await time(DEFAULT_BATCH));
  single.push(await time(1));
}
const median = (v: number[]) => [...v].sort((a, b) => a - b)[1];
const [b, s] = [median(batched), median(single)];
console.log(
  `${name}, ${some.items.length} images: batch ${DEFAULT_BATCH} ${b.toFixed(2)} s (${(some.items.length / b).toFixed(0)} img/s), batch 1 ${s.toFixed(2)} s (${(some.items.length / s).toFixed(0)} img/s); batched / batch 1 = ${(s / b).toFixed(2)}x`,
);
