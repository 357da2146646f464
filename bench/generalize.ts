// How the vehicles-on-snow edit generalizes on a real ImageNet model (default MobileNetV2):
// snow-dev accuracy (held-out photos), imagenet-sample accuracy and the guard's figures, for
// variants x rank x block x rule. Every candidate is solved once and scored through the block's
// tail (inputs captured once).
// npx tsx bench/generalize.ts [--model mobilenetv3-small-imagenet] [--blocks conv61,conv58]
//   [--ranks 1,2] [--variants 1,3] [--penalties 0.003] [--preserves 0,1] [--strengths 1,0.5]
import { join } from 'node:path';
import { DEFAULT_VARIANTS, loadExemplars } from '../src/concepts/exemplar.ts';
import { openDataset } from '../src/data/dataset.ts';
import { rewrite } from '../src/edit/rewrite.ts';
import { backOff, Guard, splitReference } from '../src/edit/guard.ts';
import { Traces } from '../src/runtime/block-trace.ts';
import { METHODS } from '../src/edit/methods.ts';
import { findBlock, listBlocks } from '../src/onnx/blocks.ts';
import { readWeight } from '../src/onnx/weights.ts';
import { flag, shared, snowProblem } from './snow-problem.ts';

const D = METHODS.rewrite.options;
const list = (name: string, fallback: string) => flag(name, fallback).split(',');
const { model, spec } = await snowProblem('generalize');
const ex = join(shared, 'data/exemplars/street-road');
const reference = (await openDataset(join(shared, 'data/imagenet-sample'))).items;
const split = splitReference(reference);
const snow = (await openDataset(join(shared, 'data/snow-dev'))).items;
const strengths = list('--strengths', '1').map(Number);

console.log(
  'block\trank\tvariants\tpenalty\tpreserve\tstrength\tsnow-dev\timagenet\tguard est. drop\tguard flips %\tmean KL',
);
for (const name of list('--blocks', 'conv61')) {
  const block = findBlock(listBlocks(model.proto.graph!), name);
  const traces = new Traces(model, spec, { threads: 0 });
  const trace = traces.block(block);
  const onSnow = await Guard.create(trace, snow, { source: 'given' });
  const onImagenet = await Guard.create(trace, reference, { source: 'given' });
  const guard = await Guard.create(trace, split.guard, { source: 'given' });
  const w0 = readWeight(model, block);
  console.log(
    `${name}\t-\t-\t-\t0\t${onSnow.accuracyBefore()!.toFixed(1)}\t${onImagenet.accuracyBefore()!.toFixed(1)}`,
  );
  for (const variants of list('--variants', String(DEFAULT_VARIANTS)).map(Number)) {
    const exemplars = await loadExemplars(
      join(ex, 'image.png'),
      join(ex, 'road_mask.png'),
      { style: join(shared, 'data/styles/snowy_ground'), variants },
      spec,
    );
    for (const rank of list('--ranks', '1').map(Number))
      for (const penalty of list('--penalties', String(D.penalty.default)).map(Number))
        for (const preserve of list('--preserves', String(D.preserve.default)).map(Number)) {
          const out = await rewrite(model, exemplars, {
            spec,
            statsData: split.stats,
            layer: name,
            rank,
            penalty,
            preserve,
            guard: false,
          });
          const w1 = readWeight(out.model, block);
          const at = (x: number) => Float32Array.from(w0, (v, i) => v + x * (w1[i] - v));
          const row = async (label: string, x: number) => {
            const w = at(x);
            const [a, b, g] = [
              await onSnow.measure(w, x),
              await onImagenet.measure(w, x),
              await guard.measure(w, x),
            ];
            console.log(
              `${name}\t${rank}\t${variants}\t${penalty}\t${preserve}\t${label}\t${a.accuracy!.toFixed(1)}\t${b.accuracy!.toFixed(1)}\t${g.estimatedDrop.toFixed(3)}\t${g.flipRate.toFixed(2)}\t${g.meanKL.toExponential(2)}`,
            );
          };
          for (const x of strengths) await row(String(x), x);
          // What the default does: the guard's back-off to its budget.
          const { kept } = await backOff((x) => guard.measure(at(x), x), D.maxDrop.default).catch(
            () => ({ kept: { strength: 0 } }),
          );
          await row(`guard ${kept.strength.toFixed(3)}`, kept.strength);
        }
  }
  await traces.release();
}
