// Does the guard's label-free estimate of harm track the clean accuracy an edit really costs?
// Over a grid of edits (blocks x ranks x strengths x styles x exemplars) on the real MobileNetV2,
// the real MobileNetV3-Small and the built-in model, each edit is solved with the guard off and
// scored on three disjoint parts of the labelled reference images:
//   stats     the key statistics (ImageNet: every 4th image from the 1st; built-in: 3 of 4),
//   guard     what the guard sees (every 4th from the 4th, as `edit` holds out by default),
//   held-out  never seen by the edit or the guard (ImageNet: the other half, 500 images;
//             built-in: the clean scenes, 1000) -- the measured drop the estimates are judged by.
// Prints one row per edit, then per estimator: Pearson correlation with the measured drop, and
// for the budget (default 0.25 points) how many accepted edits had a measured drop > 0.25 and
// > 0.5 (false accepts) and how many rejected edits had a measured drop <= 0.25 (false rejects).
// 500 held-out images count a drop in steps of 0.2 points, and a few images the original model
// barely decides move under almost any edit: a false accept is also tested with McNemar's exact
// test (images lost against images gained), to tell harm from coin flips of the changed images.
// npx tsx bench/guard-harm.ts [--models mnv2,mnv3,builtin] [--ranks 1,3] [--strengths 1,0.5,0.25]
//   [--budget 0.25] [--scenes DIR]   (2 cores: about 40 minutes for the default grid)
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadExemplars, type Exemplar } from '../src/concepts/exemplar.ts';
import { openDataset, type DatasetItem } from '../src/data/dataset.ts';
import { loadPreprocess, type PreprocessSpec } from '../src/data/preprocess.ts';
import { Guard } from '../src/edit/guard.ts';
import { Traces } from '../src/runtime/block-trace.ts';
import { expectedDrop } from '../src/edit/harm.ts';
import { spatialBlocks } from '../src/edit/layer.ts';
import { rewrite } from '../src/edit/rewrite.ts';
import { loadModel, type OnnxModel } from '../src/onnx/model.ts';
import { readWeight } from '../src/onnx/weights.ts';
import { flag, requireShared, shared, STREET } from './snow-problem.ts';

requireShared('guard-harm');
const list = (name: string, fallback: string) => flag(name, fallback).split(',');
const budget = Number(flag('--budget', '0.25'));

interface Problem {
  model: OnnxModel;
  spec: PreprocessSpec;
  stats: DatasetItem[];
  guard: DatasetItem[];
  heldOut: DatasetItem[];
  /** Exemplar name -> image and mask; each is edited toward every style. */
  exemplars: Record<string, { image: string; mask: string }>;
  styles: Record<string, string>;
  /** Photos of the problem the edit fixes (ImageNet: snow-dev), scored per edit. */
  problem?: DatasetItem[];
}

async function imagenetProblem(dir: string): Promise<Problem> {
  const m = join(shared, 'models', dir);
  const items = (await openDataset(join(shared, 'data/imagenet-sample'))).items;
  const part = (...r: number[]) => items.filter((_, i) => r.includes(i % 4));
  const styles = join(shared, 'data/styles');
  return {
    model: await loadModel(join(m, 'model.onnx')),
    spec: await loadPreprocess(join(m, 'preprocess.json')),
    stats: part(0),
    guard: part(3),
    heldOut: part(1, 2),
    exemplars: { street: STREET },
    styles: Object.fromEntries(
      ['snowy_ground', 'graffiti', 'colorful_flowers', 'black_and_white'].map((s) => [
        s,
        join(styles, s),
      ]),
    ),
    problem: (await openDataset(join(shared, 'data/snow-dev'))).items,
  };
}

/** The built-in model on scenes the CLI writes (the layout of bench/scene-benchmark.sh). */
async function builtinProblem(w: string): Promise<Problem> {
  const cli = (...a: string[]) =>
    execFileSync('node', [resolve(import.meta.dirname, '../bin/ruledit.js'), ...a]);
  if (!existsSync(join(w, 'styles'))) cli('synth', 'styles', '--out', join(w, 'styles'));
  for (const [d, n, seed, ground] of [
    ['clean', '100', '2', ''],
    ['reference', '160', '3', ''],
    ['road', '4', '4', 'road'],
    ['grass', '4', '4', 'grass'],
  ])
    if (!existsSync(join(w, d)))
      cli(
        'synth',
        'scenes',
        '--out',
        join(w, d),
        '--per-class',
        n,
        '--seed',
        seed,
        ...(ground ? ['--ground', ground] : []),
      );
  const reference = (await openDataset(join(w, 'reference'))).items;
  const ex = (ground: string, name: string) => ({
    image: join(w, ground, 'images', name),
    mask: join(w, ground, 'masks', ground, name),
  });
  const m = resolve(import.meta.dirname, '../models/scenes');
  return {
    model: await loadModel(join(m, 'model.onnx')),
    spec: await loadPreprocess(join(m, 'preprocess.json')),
    stats: reference.filter((_, i) => i % 4 !== 3),
    guard: reference.filter((_, i) => i % 4 === 3),
    heldOut: (await openDataset(join(w, 'clean'))).items,
    exemplars: {
      'road-car': ex('road', 'car-0.png'),
      'grass-cow': ex('grass', 'cow-1.png'),
    },
    styles: { snow: join(w, 'styles/snow'), graffiti: join(w, 'styles/graffiti') },
  };
}

const problems: Record<string, () => Promise<Problem>> = {
  mnv2: () => imagenetProblem('mobilenetv2-imagenet'),
  mnv3: () => imagenetProblem('mobilenetv3-small-imagenet'),
  builtin: () => builtinProblem(flag('--scenes', '/tmp/ruledit-guard-harm')),
};

/** One edit's figures: the label-free estimates on the guard split and the measured drops. */
interface Row {
  model: string;
  estimate: number;
  calibrated: number;
  flipRate: number;
  confidentFlips: number;
  meanKL: number;
  guardDrop: number;
  measured: number;
  /** McNemar's test on the held-out images: right before and wrong after, and the reverse. */
  lost: number;
  gained: number;
  /** One-sided exact p-value that the edit costs accuracy (lost vs gained as coin flips). */
  p: number;
}

/** P(X >= k) for X ~ Binomial(n, 1/2): how often coin flips lose k of the n changed images. */
function upperTail(k: number, n: number): number {
  let [term, sum] = [0.5 ** n, 0];
  for (let i = 0; i <= n; i++) {
    if (i >= k) sum += term;
    term *= (n - i) / (i + 1);
  }
  return Math.min(1, sum);
}
const rows: Row[] = [];

console.log(
  'model\tblock\trank\texemplar\tstyle\tstrength\tproblem acc\testimated drop (raw)\testimated drop (calibrated)\tflip %\tconfident flip %\tmean KL\tguard-measured drop\theld-out drop\tlost\tgained\tMcNemar p',
);
for (const name of list('--models', 'mnv2,mnv3,builtin')) {
  const p = await problems[name]();
  for (const block of await spatialBlocks(p.model, p.spec, 3)) {
    const opts = { source: 'given' as const };
    const traces = new Traces(p.model, p.spec, { threads: 0 });
    const trace = traces.block(block);
    const guard = await Guard.create(trace, p.guard, opts);
    const held = await Guard.create(trace, p.heldOut, opts);
    const fix = p.problem && (await Guard.create(trace, p.problem, opts));
    const before = guard.before;
    const truth = held.before;
    const classes = before.probs.length / guard.images;
    console.log(
      `${name}\t${block.name}\toriginal\t\t\t0\t${fix?.accuracyBefore()!.toFixed(1)}\ttemperature ${guard.temperature.toFixed(3)}`,
    );
    const confident = [...before.top1].filter(
      (c, i) => before.probs[i * classes + c] >= 0.5,
    ).length;
    const w0 = readWeight(p.model, block);
    for (const [exName, ex] of Object.entries(p.exemplars))
      for (const [styleName, style] of Object.entries(p.styles)) {
        const exemplars: Exemplar[] = await loadExemplars(ex.image, ex.mask, { style }, p.spec);
        for (const rank of list('--ranks', '1,3').map(Number)) {
          const out = await rewrite(p.model, exemplars, {
            spec: p.spec,
            statsData: p.stats,
            layer: block.name,
            rank,
            guard: false,
          });
          const w1 = readWeight(out.model, block);
          for (const s of list('--strengths', '1,0.5,0.25').map(Number)) {
            const w = Float32Array.from(w0, (v, i) => v + s * (w1[i] - v));
            const g = await guard.measure(w, s);
            const after = await guard.predict(w);
            const confidentFlipped = [...before.top1].filter(
              (c, i) => before.probs[i * classes + c] >= 0.5 && after.top1[i] !== c,
            ).length;
            const h = await held.measure(w, s);
            const now = (await held.predict(w)).top1;
            const right = (t: Int32Array, i: number) => t[i] === truth.labels[i];
            const lost = truth.labels.filter(
              (_, i) => right(truth.top1, i) && !right(now, i),
            ).length;
            const gained = truth.labels.filter(
              (_, i) => !right(truth.top1, i) && right(now, i),
            ).length;
            const row: Row = {
              model: name,
              estimate: expectedDrop(before.probs, classes, before.top1, after.top1),
              calibrated: g.estimatedDrop,
              flipRate: g.flipRate,
              confidentFlips: (100 * confidentFlipped) / Math.max(1, confident),
              meanKL: g.meanKL,
              guardDrop: guard.accuracyBefore()! - g.accuracy!,
              measured: held.accuracyBefore()! - h.accuracy!,
              lost,
              gained,
              p: upperTail(lost, lost + gained),
            };
            rows.push(row);
            const solved = fix && (await fix.measure(w, s)).accuracy!.toFixed(1);
            console.log(
              [
                name,
                block.name,
                rank,
                exName,
                styleName,
                s,
                solved,
                row.estimate.toFixed(3),
                row.calibrated.toFixed(3),
                row.flipRate.toFixed(2),
                row.confidentFlips.toFixed(2),
                row.meanKL.toExponential(2),
                row.guardDrop.toFixed(2),
                row.measured.toFixed(2),
                lost,
                gained,
                row.p.toFixed(3),
              ].join('\t'),
            );
          }
        }
      }
    await traces.release();
  }
}

function pearson(x: number[], y: number[]): number {
  const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
  const [mx, my] = [mean(x), mean(y)];
  let [sxy, sxx, syy] = [0, 0, 0];
  for (let i = 0; i < x.length; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) ** 2;
    syy += (y[i] - my) ** 2;
  }
  return sxy / Math.sqrt(sxx * syy);
}

// Each estimator's budget: the drop estimates in points; the flip rates in percent at the old
// default (0.5%); KL has no natural unit, so it is only correlated.
const estimators: [string, (r: Row) => number, number | undefined][] = [
  ['estimated drop, raw probabilities', (r) => r.estimate, budget],
  ['estimated drop, calibrated (the guard)', (r) => r.calibrated, budget],
  ['guard-measured drop', (r) => r.guardDrop, budget],
  ['flip rate', (r) => r.flipRate, 0.5],
  ['confident flip rate', (r) => r.confidentFlips, 0.5],
  ['mean KL', (r) => r.meanKL, undefined],
];
console.log(
  `\nestimator\tmodels\tedits\tcorrelation with held-out drop\tbudget\taccepted\taccepted with drop > ${budget}\taccepted with drop > 0.5\tof them significant (McNemar p < 0.05)\trejected with drop <= ${budget}`,
);
for (const set of [...new Set(rows.map((r) => r.model)), 'all']) {
  const rs = rows.filter((r) => set === 'all' || r.model === set);
  for (const [label, f, b] of estimators) {
    const r = pearson(
      rs.map(f),
      rs.map((x) => x.measured),
    ).toFixed(2);
    if (b === undefined) {
      console.log(`${label}\t${set}\t${rs.length}\t${r}`);
      continue;
    }
    const accepted = rs.filter((x) => f(x) <= b);
    console.log(
      [
        label,
        set,
        rs.length,
        r,
        b,
        accepted.length,
        accepted.filter((x) => x.measured > budget).length,
        accepted.filter((x) => x.measured > 0.5).length,
        accepted.filter((x) => x.measured > 0.5 && x.p < 0.05).length,
        rs.filter((x) => f(x) > b && x.measured <= budget).length,
      ].join('\t'),
    );
  }
}
