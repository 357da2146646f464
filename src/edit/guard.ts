import { resolve } from 'node:path';
import type { DatasetItem } from '../data/dataset.js';
import { RuleditError } from '../errors.js';
import { storedShape, storedWeight } from '../onnx/weights.js';
import { expectedDrop, fitTemperature, tempered } from './harm.js';
import { softmax, topK } from '../runtime/logits.js';
import type { BlockTrace } from '../runtime/block-trace.js';
import type { Tapped } from '../runtime/session.js';
import { ticker } from '../util/ticker.js';
import { METHODS } from './methods.js';
import type { GuardFigures, GuardReport } from './guard-report.js';

/**
 * The safety guard (docs/method.md section 6): what an edit costs on in-distribution images it never
 * saw, in the paper's unit, points of clean top-1 accuracy. Without labels the cost is estimated
 * from the original model's own probabilities (harm.ts); with labelled guard images those
 * probabilities are first calibrated on the labels. The flip rate (share of images whose top-1
 * changes) and the mean KL divergence of the softmax are reported next to it; with labels, the
 * accuracy before and after too.
 */
export interface GuardOptions {
  /** Held-out in-distribution images; default: every 4th reference image, kept out of the statistics. */
  data?: DatasetItem[];
  /** Largest estimated clean top-1 drop (points) the edit may cost (default: methods.ts). */
  maxDrop?: number;
}

export type { GuardFigures, GuardReport } from './guard-report.js';

/**
 * An image whose original top-2 probabilities are within this of each other is a tie: any
 * perturbation flips it (a float rounding, an edit of no consequence; measured on imagenet-sample,
 * two such images with margins 0.002 and 0.005 flipped at 1/4 of an edit that moved no accuracy),
 * so it says nothing about the edit and is left out of the flip rate (and reported).
 */
export const TIE = 0.01;

/** Fewer labelled guard images than this say too little to calibrate the model's probabilities. */
const CALIBRATE_MIN = 50;

/** Share of the reference images held out for the guard when no guard images are given. */
const GUARD_EVERY = 4;
/** Enough images to estimate a drop of a fraction of a point; more only costs time. */
const GUARD_MAX = 500;

/**
 * Reference images split in two: the key statistics are computed on one part and the guard runs
 * on the other, so the guard measures images the edit's statistics never saw.
 */
export function splitReference(items: DatasetItem[]): {
  stats: DatasetItem[];
  guard: DatasetItem[];
} {
  const stats: DatasetItem[] = [];
  const guard: DatasetItem[] = [];
  items.forEach((item, i) =>
    (i % GUARD_EVERY === GUARD_EVERY - 1 && guard.length < GUARD_MAX ? guard : stats).push(item),
  );
  return { stats, guard };
}

/** Refuse guard images that the statistics also used: the guard would not be held out. */
export function checkHeldOut(guard: DatasetItem[], stats: DatasetItem[]): void {
  const used = new Set(stats.map((i) => resolve(i.file)));
  const shared = guard.filter((i) => used.has(resolve(i.file)));
  if (shared.length)
    throw new RuleditError(
      'guard-overlap',
      `${shared.length} of the ${guard.length} guard images are also reference images of the key statistics ` +
        `(e.g. ${shared[0].file}): the guard must measure images the edit never saw; give separate folders`,
    );
}

/**
 * A block's tail run on guard images read once through its trace: the block's key and whatever
 * else crosses into the tail come from the original model, so each candidate weight costs one pass
 * of the tail.
 */
export class Guard {
  private constructor(
    private readonly trace: BlockTrace,
    private readonly files: string[],
    private readonly original: { probs: Float32Array; top1: Int32Array; margin: Float32Array },
    private readonly labels: (number | undefined)[],
    readonly source: GuardReport['source'],
    readonly temperature: number,
    /** The original model's calibrated belief in each class of each image. */
    private readonly belief: Float32Array,
  ) {}

  static async create(
    trace: BlockTrace,
    items: DatasetItem[],
    options: {
      source: GuardReport['source'];
      /** Told after each batch of images read for the first time, with how many have run. */
      onImages?: (done: number) => void;
    },
  ): Promise<Guard> {
    if (!items.length)
      throw new RuleditError(
        'no-guard',
        'the safety guard needs in-distribution images; none given',
      );
    const files = items.map((i) => i.file);
    const { images } = await trace.readTail(files, options.onImages);
    const labels = items.map((i) => i.label);
    // The original model's side depends on the images alone: a selection's guards fit it once.
    const { original, temperature, belief } = trace.traces.remember(
      JSON.stringify(['guard', files, labels]),
      () => {
        const classes = images[0].logits.length;
        const original = softmaxTop1(images.map((i) => ({ data: i.logits, dims: [1, classes] })));
        // Labels of another label set (out of the model's classes) cannot calibrate it.
        const known = labels.filter((l): l is number => l !== undefined && l >= 0 && l < classes);
        const temperature =
          known.length === labels.length && known.length >= CALIBRATE_MIN
            ? fitTemperature(original.probs, classes, known)
            : 1;
        return { original, temperature, belief: tempered(original.probs, classes, temperature) };
      },
    );
    return new Guard(trace, files, original, labels, options.source, temperature, belief);
  }

  get images(): number {
    return this.labels.length;
  }

  /** Guard images the original model cannot decide between its top two classes. */
  get ties(): number {
    return this.original.margin.filter((m) => m < TIE).length;
  }

  get labelled(): boolean {
    return this.labels.every((l) => l !== undefined);
  }

  /** Top-1 accuracy (percent) of the original model; undefined without labels. */
  accuracyBefore(): number | undefined {
    return this.labelled ? accuracy(this.original.top1, this.labels) : undefined;
  }

  /** The guard's figures for a block weight (canonical [out, in, ...] layout), and its bias if changed. */
  async measure(
    weight: Float32Array,
    strength: number,
    bias?: Float32Array,
  ): Promise<GuardFigures> {
    const edited = await this.predict(weight, bias);
    const n = this.images;
    const classes = edited.probs.length / n;
    let flips = 0;
    let tieFlips = 0;
    let kl = 0;
    for (let i = 0; i < n; i++) {
      if (edited.top1[i] !== this.original.top1[i]) {
        if (this.original.margin[i] < TIE) tieFlips++;
        else flips++;
      }
      for (let c = 0; c < classes; c++) {
        const p = this.original.probs[i * classes + c];
        if (p > 0) kl += p * Math.log(p / Math.max(edited.probs[i * classes + c], 1e-30));
      }
    }
    return {
      strength,
      flips,
      flipRate: (100 * flips) / Math.max(1, n - this.ties),
      tieFlips,
      meanKL: kl / n,
      estimatedDrop: expectedDrop(this.belief, classes, this.original.top1, edited.top1),
      ...(this.labelled ? { accuracy: accuracy(edited.top1, this.labels) } : {}),
    };
  }

  /** The original model's softmax, top-1 and labels on the guard images. */
  get before() {
    return { ...this.original, labels: this.labels };
  }

  /** Softmax and top-1 of the guard images with a block weight (canonical layout) and bias. */
  async predict(
    weight: Float32Array,
    bias?: Float32Array,
  ): Promise<{ probs: Float32Array; top1: Int32Array }> {
    const { block } = this.trace;
    const free: Record<string, Tapped> = {
      [block.weight]: { data: storedWeight(block, weight), dims: storedShape(block) },
    };
    if (bias) free[block.bias!] = { data: bias, dims: [bias.length] };
    const logits = await this.trace.runTail(this.files, free);
    if (!logits)
      throw new Error(`internal: block '${block.name}' does not read its own weight after its key`);
    return softmaxTop1(logits);
  }
}

/** Bisection steps of the back-off: the kept strength is found to 1/2^6 of the solved change. */
const BACKOFF_STEPS = 6;

/**
 * The strongest scaling s in (0, 1] of a change whose estimated clean drop fits the budget.
 * Scaling the coefficients keeps the edit's direction and shrinks it toward the original model;
 * the drop grows with s (near enough: a bisection finds the largest s that fits). Nothing fits: a
 * clear error.
 */
export async function backOff(
  measure: (strength: number) => Promise<GuardFigures>,
  maxDrop: number,
): Promise<{ kept: GuardFigures; trials: GuardFigures[] }> {
  const trials = [await measure(1)];
  if (trials[0].estimatedDrop <= maxDrop) return { kept: trials[0], trials };
  let kept: GuardFigures | undefined;
  let [lo, hi] = [0, 1];
  for (let k = 0; k < BACKOFF_STEPS; k++) {
    const mid = (lo + hi) / 2;
    const f = await measure(mid);
    trials.push(f);
    if (f.estimatedDrop <= maxDrop) [lo, kept] = [mid, f];
    else hi = mid;
  }
  if (!kept)
    throw new RuleditError(
      'guard-rejected',
      `the edit is estimated to cost ${points(trials[0].estimatedDrop)} of clean top-1 accuracy, and still ` +
        `${points(trials.at(-1)!.estimatedDrop)} at 1/${2 ** BACKOFF_STEPS} of its strength (budget ${maxDrop}): ` +
        'nothing was written. Try a larger or more precise mask, more style variants, another `layer`, or a larger `maxDrop`',
    );
  return { kept, trials };
}

/** A clean accuracy drop as the guard's messages write it. */
export const points = (drop: number) => `${drop.toFixed(2)} points`;

/** The reference images of a guarded method, split between what it learns from and the guard. */
export interface ReferenceSplit {
  /** What the method may learn from (the rewrite's statistics and preserve term). */
  stats?: DatasetItem[];
  /** Held out for the guard; absent when the guard is off. */
  guard?: DatasetItem[];
  source: GuardReport['source'];
  maxDrop: number;
}

/**
 * Which reference images feed the statistics and which the guard: given guard images must be
 * held out of the statistics; without them, a share of the reference images is set aside.
 */
export function referenceSplit(
  all: DatasetItem[] | undefined,
  guard: GuardOptions | false | undefined,
): ReferenceSplit {
  if (guard === false) return { stats: all, source: 'given', maxDrop: Infinity };
  const maxDrop = guard?.maxDrop ?? METHODS.rewrite.options.maxDrop.default;
  if (!(maxDrop >= 0 && maxDrop <= 100))
    throw new RuleditError(
      'bad-option',
      `the guard's budget is a drop in points of accuracy, in [0, 100], got ${maxDrop}`,
    );
  if (guard?.data) {
    if (all) checkHeldOut(guard.data, all);
    return { stats: all, guard: guard.data, source: 'given', maxDrop };
  }
  if (!all)
    throw new RuleditError(
      'no-guard',
      'the safety guard needs held-out in-distribution images: give reference images to split ' +
        '(`statsData`) or guard images (`guard.data`)',
    );
  const split = splitReference(all);
  if (!split.guard.length || !split.stats.length)
    throw new RuleditError(
      'no-guard',
      `${all.length} reference images are too few to hold some out for the safety guard: give at least 4, or guard images (\`guard.data\`)`,
    );
  return { ...split, source: 'held-out reference images', maxDrop };
}

/**
 * The guard of any method that changes one block's weight: the strongest strength in (0, 1] of its
 * change whose estimated clean drop fits the budget (`measure` runs the scaled change on the
 * guard), or a 'guard-rejected' error. Undefined when the guard is off.
 */
export async function guardedStrength(
  trace: BlockTrace,
  reference: ReferenceSplit,
  options: {
    measure: (guard: Guard, strength: number) => Promise<GuardFigures>;
    say: (message: string) => void;
  },
): Promise<GuardReport | undefined> {
  const items = reference.guard;
  if (!items) return undefined;
  const { say } = options;
  const { maxDrop } = reference;
  const guard = await Guard.create(trace, items, {
    source: reference.source,
    onImages: ticker(say, (k) => `guard: ${k}/${items.length} held-out images run`),
  });
  say(
    `guard: ${guard.images} held-out images (${reference.source}), budget ${points(maxDrop)} of estimated clean drop`,
  );
  const { kept, trials } = await backOff((s) => options.measure(guard, s), maxDrop);
  const report: GuardReport = {
    ...kept,
    images: guard.images,
    ties: guard.ties,
    maxDrop,
    temperature: guard.temperature,
    source: reference.source,
    ...(guard.labelled ? { accuracyBefore: guard.accuracyBefore() } : {}),
    trials,
  };
  say(describeGuard(report));
  return report;
}

/** One line of the guard's figures, as the CLI and the progress messages show them. */
export function describeGuard(g: GuardReport): string {
  const calibrated =
    g.temperature === 1
      ? "from the model's probabilities"
      : `calibrated on the labels, T ${g.temperature.toFixed(2)}`;
  const acc =
    g.accuracyBefore !== undefined && g.accuracy !== undefined
      ? `, top-1 ${g.accuracyBefore.toFixed(1)} -> ${g.accuracy.toFixed(1)}%`
      : '';
  const ties = g.ties ? ` (${g.ties} undecided ties left out, ${g.tieFlips} of them flipped)` : '';
  const kept =
    g.strength < g.trials[0].strength
      ? `strength backed off to ${g.strength.toFixed(3)}: estimated clean drop ${points(g.trials[0].estimatedDrop)} at full strength, budget ${g.maxDrop}`
      : 'full strength';
  return (
    `guard: estimated clean drop ${points(g.estimatedDrop)} (budget ${g.maxDrop}; ${calibrated}), ` +
    `${g.flips}/${g.images - g.ties} held-out images change top-1 (${g.flipRate.toFixed(2)}%)${ties}, ` +
    `mean KL ${g.meanKL.toExponential(2)}${acc}; ${kept}`
  );
}

function softmaxTop1(batches: Tapped[]): {
  probs: Float32Array;
  top1: Int32Array;
  /** Top-1 probability minus the second's. */
  margin: Float32Array;
} {
  const classes = batches[0].dims[1];
  const n = batches.reduce((a, b) => a + b.dims[0], 0);
  const probs = new Float32Array(n * classes);
  const top1 = new Int32Array(n);
  const margin = new Float32Array(n);
  let i = 0;
  for (const b of batches)
    for (let r = 0; r < b.dims[0]; r++, i++) {
      const p = softmax(b.data.subarray(r * classes, (r + 1) * classes));
      const [first, second] = topK(p, 2);
      probs.set(p, i * classes);
      top1[i] = first;
      margin[i] = p[first] - (second === undefined ? 0 : p[second]);
    }
  return { probs, top1, margin };
}

function accuracy(top1: Int32Array, labels: (number | undefined)[]): number {
  return (100 * labels.filter((l, i) => top1[i] === l).length) / labels.length;
}
