import type { Exemplar } from '../concepts/exemplar.js';
import type { DatasetItem } from '../data/dataset.js';
import { batchDims, type PreprocessSpec } from '../data/preprocess.js';
import { RuleditError } from '../errors.js';
import { withoutPool, type Block } from '../onnx/blocks.js';
import type { EditRecord } from '../onnx/history.js';
import type { OnnxModel } from '../onnx/model.js';
import { patchBlock, readWeight } from '../onnx/weights.js';
import { withTraces, type Traces } from '../runtime/block-trace.js';
import { imageOf, Runner, type Tapped } from '../runtime/session.js';
import { channelMajor } from '../runtime/tokens.js';
import { spread } from '../util/spread.js';
import { ticker } from '../util/ticker.js';
import { exemplarDirection, keyWhitening, maskOn } from './context.js';
import type { Direction } from './direction.js';
import { guardedStrength, referenceSplit, type GuardOptions, type GuardReport } from './guard.js';
import { pickBlock } from './layer.js';
import { METHODS, type TunedOptions } from './methods.js';
import { loss, type Example, type Objective } from './objective.js';
import { applyWeightChange } from './record.js';
import {
  checkObjectiveSize,
  geometryOf,
  objectiveOf,
  preserveWeights,
  type Geometry,
  type ObjectiveParts,
} from './rewrite-objective.js';
import { solveAdam } from './solve-adam.js';
import { solveSubspace } from './solve-subspace.js';
import type { KeyStats } from './stats.js';
import type { Whitening } from './whiten.js';

/** Defaults of every tunable option: the registry of methods (methods.ts). */
const D = METHODS.rewrite.options;
/** Reference images whose values the preserve term holds (spread over the statistics' images). */
const PRESERVE_IMAGES = 32;

/** The registry's tunable options (methods.ts: rank, solver, penalty, ...), and what a call gives. */
export interface RewriteOptions extends TunedOptions<'rewrite'> {
  spec: PreprocessSpec;
  /** Reference images for the key statistics (or statistics computed before). */
  statsData?: DatasetItem[];
  stats?: KeyStats;
  /**
   * The safety guard (default on, budget 0.25 points of estimated clean drop): the edit is scaled back until it
   * fits, or refused. false turns it off (tests of the solver's exact properties, ablations).
   */
  guard?: GuardOptions | false;
  /** Recompute the key statistics even when they are cached. */
  refresh?: boolean;
  threads?: number;
  /** The captures of the caller's repeated edits of this model (see Traces). */
  traces?: Traces;
  onProgress?: (message: string) => void;
}

export interface RewriteReport {
  block: string;
  solver: string;
  rank: number;
  /** Objective of the original weights, and of the saved (float32, deployed) weights via ONNX Runtime. */
  lossBefore: number;
  lossAfter: number;
  /** Published schedule only: the loss at its last Adam step, before the final projection. */
  lastStepLoss?: number;
  keyNormFraction: number;
  clampedEigenvalues: number;
  /** Fraction of the solved change that was applied (after the guard's back-off). */
  strength: number;
  /** What the edit does to held-out in-distribution images; absent only with guard: false. */
  guard?: GuardReport;
  /** The edited block's key grid (rows x columns) and how many of its cells the mask touches. */
  keyGrid: { height: number; width: number; masked: number };
  seconds: number;
  /** Seconds per stage, in order (statistics, exemplars, direction, preserve, solve, guard, save). */
  stages: Record<string, number>;
}

/**
 * Rewrite one block so the model sees the exemplars' transformed concept as it saw the original
 * (docs/method.md sections 2-3). Returns the edited model (with the edit record in its history).
 * Each numbered stage is a function below; their seconds are reported as `stages`.
 */
export async function rewrite(
  model: OnnxModel,
  exemplars: Exemplar[],
  options: RewriteOptions,
): Promise<{ model: OnnxModel; record: EditRecord; report: RewriteReport }> {
  return withTraces(options.traces, model, options.spec, options.threads, async (traces) => {
    const start = performance.now();
    const clock = stageClock();
    const say = options.onProgress ?? (() => {});
    const s = settingsOf(exemplars, options);
    const { spec } = options;
    const picked = await pickBlock(model, spec, options.layer);
    const block = (options.pool ?? D.pool.default) ? picked : withoutPool(picked);
    say(`layer ${block.name} (${block.chain.join(' > ')}, ${block.weightShape.join('x')})`);
    if (!options.stats && !options.statsData)
      throw new RuleditError('no-stats', 'key statistics need reference images: give `statsData`');
    const reference = referenceSplit(options.statsData, options.guard);

    // 1. Statistics and whitening.
    const { stats, white } = await keyWhitening(model, block, spec, {
      stats: options.stats,
      items: reference.stats,
      threads: options.threads,
      refresh: options.refresh,
      onWarning: say,
      whiteningFloor: s.whiteningFloor,
    });
    clock.done('statistics');

    // 2. Keys and pre-activations of x', values of x.
    const taps = await exemplarTaps(model, block, exemplars, spec, options.threads);
    clock.done('exemplars');
    const preserved = s.preserve > 0 ? spread(reference.stats ?? [], PRESERVE_IMAGES) : [];
    const g = geometryOf(block, taps, (cin) => (s.subspace ? s.rank : cin));
    checkObjectiveSize(block, g, exemplars.length + preserved.length, preserved.length > 0);

    // 3. Direction.
    const { direction, keyGrid } = directionOf(taps.keys, exemplars, spec, white, s.rank, say);
    clock.done('direction');

    // 4. The objective over the block's tail, and (4b) what must not move: the values of
    // ordinary reference images, held where they were.
    const built = objectiveOf(model, block, g, s.subspace ? direction : undefined);
    const examples = exemplarExamples(built.example, taps, exemplars, spec, g, s.useMask);
    const objective = built.objective(examples);
    const lossBefore = loss(objective, new Float64Array(g.cout * g.features));
    const held = await preservedExamples(traces, block, preserved, g, examples, s, built, say);
    clock.done('preserve');

    // 5. Solve.
    const all = { ...objective, examples: [...examples, ...held] };
    const solved = await solve(all, objective, direction, s, options, say);
    clock.done('solve');

    // 6. W' = W + strength * delta, in the canonical [out, in, kh, kw] layout.
    const scaled = scaler(readWeight(model, block), solved.theta, g, s.subspace && direction);

    // 7. The guard: the strongest fraction of the change (up to `strength`) that fits its budget.
    const guard = await guardedStrength(traces.block(block), reference, {
      measure: (gd, k) => gd.measure(scaled(k * s.strength), k * s.strength),
      say,
    });
    const kept = guard?.strength ?? s.strength;
    clock.done('guard');
    const weight = scaled(kept);

    // 8. The loss of what is saved (the float32 weights run by ONNX Runtime), and its record.
    const losses = {
      before: lossBefore,
      after: await savedLoss(model, block, weight, exemplars, spec, objective, examples, options),
      ...(solved.lastStepLoss !== undefined ? { lastStep: solved.lastStepLoss } : {}),
    };
    const edited = applyWeightChange(model, block.name, weight, {
      ...recordFields(s, options, { picked, block, stats, white, direction, exemplars }),
      strength: kept,
      ...(guard ? { guard } : {}),
      ...(s.subspace ? { lambda: Array.from(solved.theta, (x) => x * kept) } : {}),
      loss: losses,
    });
    clock.done('save');
    const report: RewriteReport = {
      block: block.name,
      solver: s.solver,
      rank: s.rank,
      lossBefore,
      lossAfter: losses.after,
      ...(losses.lastStep !== undefined ? { lastStepLoss: losses.lastStep } : {}),
      keyNormFraction: direction.keyNormFraction,
      clampedEigenvalues: white.clamped,
      strength: kept,
      ...(guard ? { guard } : {}),
      keyGrid,
      seconds: (performance.now() - start) / 1000,
      stages: clock.stages,
    };
    return { ...edited, report };
  });
}

/** What the edit record says of how the rewrite was made (beside its strength, guard and losses). */
function recordFields(
  s: Settings,
  options: RewriteOptions,
  made: {
    picked: Block;
    block: Block;
    stats: KeyStats;
    white: Whitening;
    direction: Direction;
    exemplars: Exemplar[];
  },
) {
  const { picked, block, stats, white, direction } = made;
  return {
    method: s.solver === 'exact' ? 'rewrite' : `rewrite-${s.solver}`,
    layerIndex: block.index,
    rank: s.rank,
    useMask: s.useMask,
    ...(picked.pool ? { pool: block.pool !== undefined } : {}),
    direction: Array.from(direction.d),
    keyNormFraction: direction.keyNormFraction,
    whitening: {
      floor: s.whiteningFloor,
      clamped: white.clamped,
      repaired: white.repaired,
      statsImages: stats.images,
      statsKey: stats.key,
    },
    exemplars: made.exemplars.map((e) => e.hashes),
    ...(s.subspace
      ? {}
      : {
          lr: options.lr ?? D.lr.default,
          steps: options.steps ?? D.steps.default,
          projectEvery: s.projectEvery,
        }),
  };
}

/** Seconds per stage, in the order they end. */
function stageClock() {
  const stages: Record<string, number> = {};
  let lap = performance.now();
  return {
    stages,
    done(stage: string) {
      const now = performance.now();
      stages[stage] = (now - lap) / 1000;
      lap = now;
    },
  };
}

type Settings = ReturnType<typeof settingsOf>;

/** The options every stage reads, defaulted from the registry and checked before any work. */
function settingsOf(exemplars: Exemplar[], options: RewriteOptions) {
  const rank = options.rank ?? D.rank.default;
  const solver = options.solver ?? D.solver.default;
  const strength = options.strength ?? D.strength.default;
  // The exact solver works in the rank-r subspace and may hold reference images' values too
  // (4b): a total weight `preserve` times the exemplars' (0 = the published objective).
  const subspace = solver === 'exact';
  const preserve = subspace ? (options.preserve ?? D.preserve.default) : 0;
  if (!exemplars.length) throw new RuleditError('bad-exemplar', 'no exemplar given');
  if (!(Number.isInteger(rank) && rank >= 1))
    throw new RuleditError('bad-rank', `rank must be a whole number >= 1, got ${rank}`);
  const [h, w] = options.spec.size;
  for (const ex of exemplars) {
    if (ex.original.length !== 3 * h * w || ex.mask.length !== h * w) {
      throw new RuleditError(
        'bad-exemplar',
        `an exemplar is ${ex.size.join('x')} but the model input is ${h}x${w}: load it with the model's preprocessing`,
      );
    }
  }
  if (!(strength > 0 && strength <= 1))
    throw new RuleditError('bad-strength', `strength must be in (0, 1], got ${strength}`);
  if (!(preserve >= 0))
    throw new RuleditError('bad-option', `preserve must be >= 0, got ${preserve}`);
  return {
    rank,
    solver,
    subspace,
    strength,
    preserve,
    useMask: options.useMask ?? D.useMask.default,
    whiteningFloor: options.whiteningFloor ?? D.whiteningFloor.default,
    projectEvery: solver === 'published' ? (options.projectEvery ?? D.projectEvery.default) : 0,
  };
}

/**
 * The exemplars through the original model: keys and pre-activations of x', values of x
 * (channel-major: token maps become maps of their patch tokens, like a conv's). The variants of a
 * style share their original image: it runs once.
 */
async function exemplarTaps(
  model: OnnxModel,
  block: Block,
  exemplars: Exemplar[],
  spec: PreprocessSpec,
  threads: number | undefined,
) {
  const runner = await Runner.create(model, {
    taps: [block.key, block.preActivation, block.value],
    threads,
  });
  try {
    const run = (images: Float32Array[]) => runner.runImages(images, (n) => batchDims(spec, n));
    const transformed = await run(exemplars.map((e) => e.transformed));
    const originals = [...new Set(exemplars.map((e) => e.original))];
    const target = channelMajor((await run(originals)).taps[block.value]);
    return {
      keys: channelMajor(transformed.taps[block.key]),
      base: channelMajor(transformed.taps[block.preActivation]),
      target,
      targetOf: (e: number) =>
        imageOf(target, originals.indexOf(exemplars[e].original), originals.length),
    };
  } finally {
    await runner.release();
  }
}

/** The exemplars' examples: keys and pre-activations of x', values of x, weighed by the mask. */
function exemplarExamples(
  example: ObjectiveParts['example'],
  taps: Awaited<ReturnType<typeof exemplarTaps>>,
  exemplars: Exemplar[],
  spec: PreprocessSpec,
  g: Geometry,
  useMask: boolean,
): Example[] {
  const n = exemplars.length;
  // The published ablation drops the mask from the objective only: the direction stays the
  // concept's, every value position counts.
  const weight = (ex: Exemplar) =>
    useMask ? maskOn(ex, spec, g.vh, g.vw) : new Float32Array(g.vh * g.vw).fill(1);
  return exemplars.map((ex, e) =>
    example(
      imageOf(taps.keys, e, n),
      imageOf(taps.base, e, n),
      taps.targetOf(e),
      Float64Array.from(weight(ex), Math.sqrt),
    ),
  );
}

/** The direction d, said with how much of the exemplars' keys it carries. */
function directionOf(
  keys: Tapped,
  exemplars: Exemplar[],
  spec: PreprocessSpec,
  white: Whitening,
  rank: number,
  say: (message: string) => void,
) {
  const n = exemplars.length;
  const { direction, weights, grid } = exemplarDirection(keys, exemplars, spec, white.Z, rank);
  const { height: kh, width: kw } = grid;
  const keyGrid = { height: kh, width: kw, masked: weights[0].filter((m) => m > 0).length };
  say(
    `keys: ${kh}x${kw} grid, the mask touches ${keyGrid.masked} of its ${kh * kw} cells\n${gridPicture(weights[0], kh, kw)}`,
  );
  say(
    `direction: rank ${rank}, ${direction.positions} masked key positions over ${n} exemplar${n > 1 ? 's' : ''}, ${(100 * direction.keyNormFraction).toFixed(1)}% of the exemplar keys' norm along d`,
  );
  if (white.repaired)
    say(
      'warning: the key statistics were not positive definite; their non-positive eigenvalues were clamped',
    );
  if (direction.keyNormFraction < 0.05) {
    say(
      `warning: the exemplar keys barely lie along d (${(100 * direction.keyNormFraction).toFixed(2)}%): the statistics are near-singular (${white.clamped} eigenvalues clamped); the edit may change little. Try a \`whiteningFloor\` of 1e-3.`,
    );
  }
  return { direction, keyGrid };
}

/** The preserve term (4b): reference images' keys, pre-activations and values, read through the traces. */
async function preservedExamples(
  traces: Traces,
  block: Block,
  items: DatasetItem[],
  g: Geometry,
  examples: Example[],
  { preserve }: Settings,
  { example }: ObjectiveParts,
  say: (message: string) => void,
): Promise<Example[]> {
  if (!items.length) return [];
  const { weights, positions } = preserveWeights(items.length, g.vh * g.vw, examples, preserve);
  const read = await traces.read(
    [block.key, block.preActivation, block.value],
    items.map((i) => i.file),
    ticker(say, (k) => `preserve: ${k}/${items.length} reference images run`),
  );
  const held = read.images.map((image, k) => {
    const [key, pre, value] = image.tensors.map(
      (data, t) => channelMajor({ data, dims: [1, ...read.dims[t]] }).data,
    );
    return example(key, pre, value, weights[k]);
  });
  say(
    `preserve: the values of ${held.length} reference images (${positions} positions) weigh ${preserve} x the exemplars`,
  );
  return held;
}

/** theta per output channel: exactly in the rank-r subspace, or by the published Adam schedule. */
async function solve(
  full: Objective,
  exemplarsOnly: Objective,
  direction: Direction,
  s: Settings,
  options: RewriteOptions,
  say: (message: string) => void,
): Promise<{ theta: Float64Array; lastStepLoss?: number }> {
  const start = performance.now();
  if (s.subspace) {
    const solved = solveSubspace(full, {
      penalty: options.penalty ?? D.penalty.default,
      onChannel: ticker(say, (o) => `solving: ${o}/${full.channels} channels`),
    });
    const before = loss(exemplarsOnly, new Float64Array(solved.theta.length));
    say(
      `solved ${full.channels} channels x ${full.features} coefficients exactly (${solved.sweeps} sweeps) in ${((performance.now() - start) / 1000).toFixed(2)} s: loss ${before.toFixed(4)} -> ${loss(exemplarsOnly, solved.theta).toFixed(4)}`,
    );
    return { theta: solved.theta };
  }
  const steps = options.steps ?? D.steps.default;
  return solveAdam(full, {
    lr: options.lr ?? D.lr.default,
    steps,
    projectEvery: s.projectEvery,
    d: direction.d,
    rank: s.rank,
    dim: direction.dim,
    reportEvery: Math.max(1, Math.floor(steps / 20)),
    onStep: (step, l) => {
      const rate = step / ((performance.now() - start) / 1000);
      say(`step ${step}/${steps}: loss ${l.toFixed(5)} (${rate.toFixed(0)} steps/s)`);
    },
  });
}

/**
 * The block's weight at a strength k of the solved change: W + k * delta, delta the coefficients
 * (times d in the subspace), canonical [out, in, kh, kw] layout.
 */
function scaler(
  previous: Float32Array,
  theta: Float64Array,
  g: Geometry,
  direction: Direction | false,
): (k: number) => Float32Array {
  const { cin, cout, offsets, features } = g;
  const change = new Float32Array(previous.length);
  const perOut = cin * offsets;
  for (let o = 0; o < cout; o++) {
    const t = theta.subarray(o * features, (o + 1) * features);
    for (let i = 0; i < cin; i++)
      for (let u = 0; u < offsets; u++) {
        let delta = 0;
        if (direction)
          for (let r = 0; r < direction.rank; r++)
            delta += t[r * offsets + u] * direction.d[r * cin + i];
        else delta = t[i * offsets + u];
        change[o * perOut + i * offsets + u] = delta;
      }
  }
  return (k) => {
    const w = new Float32Array(previous.length);
    for (let i = 0; i < w.length; i++) w[i] = previous[i] + k * change[i];
    return w;
  };
}

/**
 * The objective of what is saved: the float32 weights run by ONNX Runtime. Their pre-activations
 * as the base with no change score them under the objective's own activation.
 */
async function savedLoss(
  model: OnnxModel,
  block: Block,
  weight: Float32Array,
  exemplars: Exemplar[],
  spec: PreprocessSpec,
  objective: Objective,
  examples: Example[],
  { threads }: { threads?: number },
): Promise<number> {
  const check = await Runner.create(patchBlock(model, block, { weight }), {
    taps: [block.preActivation],
    threads,
  });
  try {
    const out = await check.runImages(
      exemplars.map((e) => e.transformed),
      (n) => batchDims(spec, n),
    );
    const after = channelMajor(out.taps[block.preActivation]);
    const saved = examples.map((ex, e) => ({
      ...ex,
      base: Float64Array.from(imageOf(after, e, exemplars.length)),
    }));
    return loss(
      { ...objective, examples: saved },
      new Float64Array(objective.channels * objective.features),
    );
  } finally {
    await check.release();
  }
}

/** The mask on a block's key grid: '#' mostly inside, '+' partly, '.' outside. */
function gridPicture(mask: Float32Array, h: number, w: number): string {
  if (h * w > 32 * 32) return `  (${h}x${w}: too large to draw)`;
  const rows: string[] = [];
  for (let y = 0; y < h; y++) {
    let row = '  ';
    for (let x = 0; x < w; x++) {
      const m = mask[y * w + x];
      row += m >= 0.5 ? '#' : m > 0 ? '+' : '.';
    }
    rows.push(row);
  }
  return rows.join('\n');
}
