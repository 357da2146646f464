// How retrain-last's defaults (Adam lr, steps) were chosen: the vehicles-on-snow problem on a real
// ImageNet model (default MobileNetV2), the street exemplar made snowy with the five snowy_ground
// images (x placements, as `edit --style` makes them), label 734 (police van, the paper's
// exemplar class). imagenet-sample is split as bench/real-benchmark.sh splits it: the even rows are
// the reference images (anchors and guard), the odd rows the clean set it is scored on. snow-dev is
// the validation set the choice is made on; nothing here is a test set.
// npx tsx bench/retrain-last.ts [--model mobilenetv3-small-imagenet] [--lrs 1e-2,1e-3] [--steps 100]
import { join } from 'node:path';
import { openDataset } from '../src/data/dataset.ts';
import { edit } from '../src/edit/edit.ts';
import { predictFiles } from '../src/eval/predictions.ts';
import { flag, shared, snowProblem, snowyStreet } from './snow-problem.ts';

const { model, spec } = await snowProblem('retrain-last');
const exemplars = await snowyStreet(spec);
const sample = (await openDataset(join(shared, 'data/imagenet-sample'))).items;
const reference = sample.filter((_, i) => i % 2 === 0);
const clean = sample.filter((_, i) => i % 2 === 1);
const snow = (await openDataset(join(shared, 'data/snow-dev'))).items;
const top1 = async (m: typeof model, items: typeof sample) => {
  const p = await predictFiles(
    m,
    items.map((i) => i.file),
    spec,
  );
  return (100 * items.filter((it, k) => p[k] === it.label).length) / items.length;
};
const [snowBefore, cleanBefore] = [await top1(model, snow), await top1(model, clean)];
console.log(
  `${flag('--model', 'mobilenetv2-imagenet')}: ${exemplars.length} exemplars; before: snow-dev ${snowBefore.toFixed(1)}, clean ${cleanBefore.toFixed(1)}`,
);
console.log('lr\tsteps\tkept strength\tguard est. drop\tsnow-dev\tclean\tseconds');
for (const lr of flag('--lrs', '1e-2,1e-3,1e-4,1e-5').split(',').map(Number)) {
  const steps = Number(flag('--steps', '100'));
  const out = await edit({ model, spec }, exemplars, {
    method: 'retrain-last',
    label: 734,
    statsData: reference,
    lr,
    steps,
  });
  const r = out.report;
  console.log(
    `${lr}\t${steps}\t${r.strength.toFixed(3)}\t${r.guard!.estimatedDrop.toFixed(2)}\t${(await top1(out.model, snow)).toFixed(1)}\t${(await top1(out.model, clean)).toFixed(1)}\t${r.seconds.toFixed(1)}`,
  );
}
