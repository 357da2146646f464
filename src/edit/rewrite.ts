import type { Exemplar } from '../concepts/exemplar.js';
import { batches } from '../data/batches.js';
import { areaResize } from '../data/mask.js';
import type { DatasetItem } from '../data/dataset.js';
import { batchDims, type PreprocessSpec } from '../data/preprocess.js';
import { RuleditError } from '../errors.js';
import { withoutPool, type Block } from '../onnx/blocks.js';
import { GraphView } from '../onnx/graph.js';
import type { EditRecord } from '../onnx/history.js';
import type { OnnxModel } from '../onnx/model.js';
import { tensorToFloat32 } from '../onnx/tensor.js';
import { patchBlock, readWeight } from '../onnx/weights.js';
import { channelMajor } from '../runtime/tokens.js';
import { DEFAULT_BATCH, imageOf, Runner, type Tapped } from '../runtime/session.js';
import { contextDirection } from './direction.js';
import { pickBlock } from './layer.js';
import { loss, type Example, type Objective } from './objective.js';
import { applyWeightChange } from './record.js';
import { guardedStrength, referenceSplit, type GuardOptions, type GuardReport } from './guard.js';
import { spread } from '../util/spread.js';
import { ticker } from '../util/ticker.js';
import { METHODS } from './methods.js';
import { solveAdam } from './solve-adam.js';
import { solveSubspace } from './solve-subspace.js';
import { identityWindows, poolWindows } from './windows.js';
import { keyStatistics, type KeyStats } from './stats.js';
import { unfold } from './unfold.js';
import { whitening } from './whiten.js';

/** Defaults of every tunable option: the registry of methods (methods.ts). */
const D = METHODS.rewrite.options;
/** Reference images whose values the preserve term holds (spread over the statistics' images). */
const PRESERVE_IMAGES = 32;
/**
 * How many of their value positions are held: three times the exemplars' masked positions, at most
 * 2048. The solver's cost grows with the positions (k x k kernels solve by coordinate descent),
 * so a large map is sampled on a strided grid that shifts from image to image.
 */
const PRESERVE_PER_EXEMPLAR_POSITION = 3;
const PRESERVE_POSITIONS = 2048;
/**
 * The most memory an objective may take. The README's MobileNetV2 edit takes 60 MB; the largest
 * map of a 224x224 network (112x112 x 96 channels, 53 images) about 1.1 GB.
 */
const OBJECTIVE_BYTES = 4 * 2 ** 30;

export interface RewriteOptions {
  spec: PreprocessSpec;
  /** Reference images for the key statistics (or statistics computed before). */
  statsData?: DatasetItem[];
  stats?: KeyStats;
  /** Block name, index, or 'auto' (default). */
  layer?: string;
  rank?: number;
  /** false: every position counts, not only the masked concept. */
  useMask?: boolean;
  /** false: a block's value is taken before its MaxPool (see Block.pool), not after. */
  pool?: boolean;
  /**
   * 'exact': our solver in the rank-r subspace (default). 'published': Adam on the full weight,
   * projected on span(d) every `projectEvery` steps. 'full-rank': Adam with no restriction.
   */
  solver?: 'exact' | 'published' | 'full-rank';
  lr?: number;
  steps?: number;
  projectEvery?: number;
  /** L1 penalty of the exact solver, relative to each coefficient's steepest descent (see solveSubspace). */
  penalty?: number;
  /** Eigenvalues of C below this fraction of the largest are raised to it before whitening. */
  whiteningFloor?: number;
  /**
   * The safety guard (default on, budget 0.25 points of estimated clean drop): the edit is scaled back until it
   * fits, or refused. false turns it off (tests of the solver's exact properties, ablations).
   */
  guard?: GuardOptions | false;
  /**
   * Weight of the reference images' own values in the exact solver's objective, relative to the
   * exemplars (default 1; 0: the published objective, exemplars only).
   */
  preserve?: number;
  /** Recompute the key statistics even when they are cached. */
  refresh?: boolean;
  /** Fraction of the solved change to apply (default 1); the guard may keep less. */
  strength?: number;
  threads?: number;
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
 */
export async function rewrite(
  model: OnnxModel,
  exemplars: Exemplar[],
  options: RewriteOptions,
): Promise<{ model: OnnxModel; record: EditRecord; report: RewriteReport }> {
  const start = performance.now();
  const stages: Record<string, number> = {};
  let lap = start;
  const done = (stage: string) => {
    const now = performance.now();
    stages[stage] = (now - lap) / 1000;
    lap = now;
  };
  const say = options.onProgress ?? (() => {});
  const { spec } = options;
  const rank = options.rank ?? D.rank.default;
  const useMask = options.useMask ?? D.useMask.default;
  const solver = options.solver ?? D.solver.default;
  if (!exemplars.length) throw new RuleditError('bad-exemplar', 'no exemplar given');
  if (!(Number.isInteger(rank) && rank >= 1))
    throw new RuleditError('bad-rank', `rank must be a whole number >= 1, got ${rank}`);
  const [h, w] = spec.size;
  for (const ex of exemplars) {
    if (ex.original.length !== 3 * h * w || ex.mask.length !== h * w) {
      throw new RuleditError(
        'bad-exemplar',
        `an exemplar is ${ex.size.join('x')} but the model input is ${h}x${w}: load it with the model's preprocessing`,
      );
    }
  }

  const strength = options.strength ?? D.strength.default;
  if (!(strength > 0 && strength <= 1))
    throw new RuleditError('bad-strength', `strength must be in (0, 1], got ${strength}`);
  const picked = await pickBlock(model, spec, options.layer);
  const block = (options.pool ?? D.pool.default) ? picked : withoutPool(picked);
  say(`layer ${block.name} (${block.chain.join(' > ')}, ${block.weightShape.join('x')})`);
  if (!options.stats && !options.statsData)
    throw new RuleditError('no-stats', 'key statistics need reference images: give `statsData`');
  const reference = referenceSplit(options.statsData, options.guard);

  // 1. Statistics and whitening.
  const stats =
    options.stats ??
    (await keyStatistics(model, block, reference.stats!, spec, {
      threads: options.threads,
      refresh: options.refresh,
      onWarning: say,
    }));
  if (stats.block !== block.name)
    throw new RuleditError(
      'bad-stats',
      `the statistics are for '${stats.block}', not '${block.name}'`,
    );
  const white = whitening(stats.C, stats.dim, options.whiteningFloor ?? D.whiteningFloor.default);
  done('statistics');

  // 2. Keys and pre-activations of x', values of x.
  const runner = await Runner.create(model, {
    taps: [block.key, block.preActivation, block.value],
    threads: options.threads,
  });
  const run = (r: Runner, images: Float32Array[]) =>
    r.runImages(images, (count) => batchDims(spec, count));
  const n = exemplars.length;
  const transformed = await run(
    runner,
    exemplars.map((e) => e.transformed),
  );
  // The variants of a style share their original image: it runs once.
  const originals = [...new Set(exemplars.map((e) => e.original))];
  const original = await run(runner, originals);
  done('exemplars');
  // Token keys and values ([N, T, C]) become maps of their patch tokens, like a conv's.
  const keys = channelMajor(transformed.taps[block.key]);
  const base = channelMajor(transformed.taps[block.preActivation]);
  const target = channelMajor(original.taps[block.value]);
  const [cin, kh = 1, kw = 1] = [keys.dims[1], keys.dims[2], keys.dims[3]];
  const [cout, vh = 1, vw = 1] = [target.dims[1], target.dims[2], target.dims[3]];
  const keyPositions = kh * kw;
  const valuePositions = vh * vw;
  // The pre-activation's positions: the value's, or more before the block's MaxPool.
  const [ph = 1, pw = 1] = base.dims.slice(2);
  const windows = block.pool ? poolWindows(block.pool, ph, pw) : identityWindows(ph * pw);
  if (windows.starts.length - 1 !== valuePositions)
    throw new Error(
      `internal: the pool windows give ${windows.starts.length - 1} positions, the value has ${valuePositions}`,
    );
  // The exact solver works in the rank-r subspace and may hold reference images' values too
  // (4b): a total weight `preserve` times the exemplars' (0 = the published objective).
  const subspace = solver === 'exact';
  const preserve = subspace ? (options.preserve ?? D.preserve.default) : 0;
  if (!(preserve >= 0))
    throw new RuleditError('bad-option', `preserve must be >= 0, got ${preserve}`);
  // The objective holds, per exemplar and preserved reference image, every channel's
  // pre-activation and value in float64 and the unfolded keys: a block with a huge map (a
  // 1007x1007 one, found by bench/fuzz.ts) would take minutes and then all memory.
  const preserved = preserve > 0 ? spread(reference.stats ?? [], PRESERVE_IMAGES) : [];
  const images = n + preserved.length;
  const offsets = block.conv ? block.weightShape[2] * block.weightShape[3] : 1;
  const features = (subspace ? rank : cin) * offsets;
  const perImage =
    8 * (cout * (ph * pw + valuePositions) + ph * pw * features) +
    4 * (cin * keyPositions + cout * (ph * pw + valuePositions));
  if (images * perImage > OBJECTIVE_BYTES)
    throw new RuleditError(
      'block-too-large',
      `block '${block.name}' has a ${ph}x${pw} map of ${cout} channels: its objective over ${images} images (exemplars${preserved.length ? ' and preserved reference images' : ''}) would hold ${((images * perImage) / 2 ** 30).toFixed(1)} GB, beyond ruledit's ${OBJECTIVE_BYTES / 2 ** 30} GB; choose a deeper layer (\`layer\`) or give the model a smaller input`,
    );

  const maskAt = (ex: Exemplar, outH: number, outW: number) =>
    areaResize(ex.mask, w, h, outW, outH);
  // The published ablation drops the mask from the objective only: the direction stays the
  // concept's, every value position counts.
  const objectiveMask = (ex: Exemplar, outH: number, outW: number) =>
    useMask ? maskAt(ex, outH, outW) : new Float32Array(outH * outW).fill(1);
  const perExemplar = (t: Tapped, e: number) => imageOf(t, e, n);
  const targetOf = (e: number) =>
    imageOf(target, originals.indexOf(exemplars[e].original), originals.length);

  // 3. Direction.
  const direction = contextDirection(
    exemplars.map((ex, e) => ({ keys: perExemplar(keys, e), weights: maskAt(ex, kh, kw) })),
    white.Z,
    cin,
    rank,
  );
  const keyMask = maskAt(exemplars[0], kh, kw);
  const keyGrid = { height: kh, width: kw, masked: keyMask.filter((m) => m > 0).length };
  say(
    `keys: ${kh}x${kw} grid, the mask touches ${keyGrid.masked} of its ${kh * kw} cells\n${gridPicture(keyMask, kh, kw)}`,
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

  done('direction');

  // 4. The objective over the block's tail: pre' = base + gain * conv(theta, rows).
  const exampleOf = (
    k: Float32Array,
    pre: Float32Array,
    value: Float32Array,
    weight: Float64Array,
  ): Example => {
    let map: Float64Array;
    if (subspace) {
      map = new Float64Array(rank * keyPositions);
      for (let r = 0; r < rank; r++)
        for (let c = 0; c < cin; c++) {
          const dc = direction.d[r * cin + c];
          if (dc === 0) continue;
          for (let p = 0; p < keyPositions; p++)
            map[r * keyPositions + p] += dc * k[c * keyPositions + p];
        }
    } else {
      map = Float64Array.from(k);
    }
    const unfolded = unfold(block, map, subspace ? rank : cin, kh, kw);
    // The convolution's own output and the chain's disagree when the chain broadcasts it (an Add
    // of a 1x1 map and a full one: found by bench/fuzz.ts with a stride of 1000).
    if (unfolded.positions !== ph * pw) {
      throw new RuleditError(
        'unsupported-model',
        `block '${block.name}': its convolution gives ${unfolded.positions} positions but its chain (${block.chain.join(' > ')}) gives ${ph * pw}, so the chain broadcasts the convolution's output: ruledit cannot edit such a block; choose another with \`layer\``,
      );
    }
    return {
      rows: unfolded.rows,
      base: Float64Array.from(pre),
      target: Float64Array.from(value),
      weight,
    };
  };
  const examples: Example[] = exemplars.map((ex, e) =>
    exampleOf(
      perExemplar(keys, e),
      perExemplar(base, e),
      targetOf(e),
      Float64Array.from(objectiveMask(ex, vh, vw), Math.sqrt),
    ),
  );
  const objective: Objective = {
    examples,
    channels: cout,
    positions: ph * pw,
    windows,
    features,
    gain: bnGain(model, block, cout),
    activation: block.activation,
  };
  const lossBefore = loss(objective, new Float64Array(cout * objective.features));

  // 4b. What must not move: the values of ordinary reference images, held where they were.
  const held: Example[] = [];
  if (preserved.length) {
    const items = preserved;
    const exemplarWeight = examples.reduce((a, ex) => a + ex.weight.reduce((x, y) => x + y, 0), 0);
    const masked = examples.reduce((a, ex) => a + ex.weight.filter((x) => x > 0).length, 0);
    const budget = Math.min(PRESERVE_POSITIONS, PRESERVE_PER_EXEMPLAR_POSITION * masked);
    const stride = Math.max(1, Math.ceil((items.length * valuePositions) / budget));
    const selected = items.map((_, k) =>
      Array.from({ length: valuePositions }, (_, p) => (p + k) % stride === 0),
    );
    const total = selected.flat().filter(Boolean).length;
    const weights = selected.map((sel) =>
      Float64Array.from(sel, (on) => (on ? (preserve * exemplarWeight) / total : 0)),
    );
    const taps = await preserveTaps(
      model,
      block,
      items,
      spec,
      runner,
      ticker(say, (k) => `preserve: ${k}/${items.length} reference images run`),
    );
    taps.forEach((t, k) => held.push(exampleOf(t.key, t.pre, t.value, weights[k])));
    say(
      `preserve: the values of ${held.length} reference images (${total} positions) weigh ${preserve} x the exemplars`,
    );
  }

  done('preserve');

  // 5. Solve.
  let theta: Float64Array;
  let lastStepLoss: number | undefined;
  const solveStart = performance.now();
  if (subspace) {
    const solved = solveSubspace(
      { ...objective, examples: [...examples, ...held] },
      {
        penalty: options.penalty ?? D.penalty.default,
        onChannel: ticker(say, (o) => `solving: ${o}/${cout} channels`),
      },
    );
    theta = solved.theta;
    say(
      `solved ${cout} channels x ${objective.features} coefficients exactly (${solved.sweeps} sweeps) in ${((performance.now() - solveStart) / 1000).toFixed(2)} s: loss ${lossBefore.toFixed(4)} -> ${loss(objective, theta).toFixed(4)}`,
    );
  } else {
    const steps = options.steps ?? D.steps.default;
    const adam = await solveAdam(objective, {
      lr: options.lr ?? D.lr.default,
      steps,
      projectEvery: solver === 'published' ? (options.projectEvery ?? D.projectEvery.default) : 0,
      d: direction.d,
      rank,
      dim: cin,
      reportEvery: Math.max(1, Math.floor(steps / 20)),
      onStep: (step, l) => {
        const rate = step / ((performance.now() - solveStart) / 1000);
        say(`step ${step}/${steps}: loss ${l.toFixed(5)} (${rate.toFixed(0)} steps/s)`);
      },
    });
    theta = adam.theta;
    lastStepLoss = adam.lastStepLoss;
  }

  done('solve');

  // 6. W' = W + strength * delta, in the canonical [out, in, kh, kw] layout.
  const previous = readWeight(model, block);
  const change = new Float32Array(previous.length);
  const perOut = cin * offsets;
  for (let o = 0; o < cout; o++) {
    const t = theta.subarray(o * objective.features, (o + 1) * objective.features);
    for (let i = 0; i < cin; i++)
      for (let u = 0; u < offsets; u++) {
        let delta = 0;
        if (subspace)
          for (let r = 0; r < rank; r++) delta += t[r * offsets + u] * direction.d[r * cin + i];
        else delta = t[i * offsets + u];
        change[o * perOut + i * offsets + u] = delta;
      }
  }
  const scaled = (s: number) => {
    const w = new Float32Array(previous.length);
    for (let i = 0; i < w.length; i++) w[i] = previous[i] + s * change[i];
    return w;
  };

  // 7. The guard: the strongest fraction of the change (up to `strength`) that fits its budget.
  const guardReport = await guardedStrength(model, block, reference, spec, {
    measure: (guard, s) => guard.measure(scaled(s * strength), s * strength),
    threads: options.threads,
    say,
  });
  const kept = guardReport?.strength ?? strength;
  done('guard');
  const weight = scaled(kept);

  const fields = {
    method: solver === 'exact' ? 'rewrite' : `rewrite-${solver}`,
    layerIndex: block.index,
    rank,
    useMask,
    ...(picked.pool ? { pool: block.pool !== undefined } : {}),
    direction: Array.from(direction.d),
    keyNormFraction: direction.keyNormFraction,
    whitening: {
      floor: options.whiteningFloor ?? D.whiteningFloor.default,
      clamped: white.clamped,
      repaired: white.repaired,
      statsImages: stats.images,
      statsKey: stats.key,
    },
    exemplars: exemplars.map((e) => e.hashes),
    strength: kept,
    ...(guardReport ? { guard: guardReport } : {}),
    ...(subspace
      ? { lambda: Array.from(theta, (x) => x * kept) }
      : {
          lr: options.lr ?? D.lr.default,
          steps: options.steps ?? D.steps.default,
          projectEvery:
            solver === 'published' ? (options.projectEvery ?? D.projectEvery.default) : 0,
        }),
  };
  // 8. The loss of what is saved: the float32 weights run by ONNX Runtime. Their pre-activations
  // as the base with no change score them under the objective's own activation.
  const check = await Runner.create(patchBlock(model, block, { weight }), {
    taps: [block.preActivation],
    threads: options.threads,
  });
  const after = channelMajor(
    (
      await run(
        check,
        exemplars.map((e) => e.transformed),
      )
    ).taps[block.preActivation],
  );
  await Promise.all([runner.release(), check.release()]);
  const saved = examples.map((ex, e) => ({
    ...ex,
    base: Float64Array.from(perExemplar(after, e)),
  }));
  const lossAfter = loss({ ...objective, examples: saved }, new Float64Array(theta.length));
  const edited = applyWeightChange(model, block.name, weight, {
    ...fields,
    loss: {
      before: lossBefore,
      after: lossAfter,
      ...(lastStepLoss !== undefined ? { lastStep: lastStepLoss } : {}),
    },
  });
  done('save');
  const report: RewriteReport = {
    block: block.name,
    solver,
    rank,
    lossBefore,
    lossAfter,
    ...(lastStepLoss !== undefined ? { lastStepLoss } : {}),
    keyNormFraction: direction.keyNormFraction,
    clampedEigenvalues: white.clamped,
    strength: kept,
    ...(guardReport ? { guard: guardReport } : {}),
    keyGrid,
    seconds: (performance.now() - start) / 1000,
    stages,
  };
  return { ...edited, report };
}

/** d(pre-activation)/d(linear output) per channel: scale / sqrt(var + eps) with BN, else 1. */
function bnGain(model: OnnxModel, block: Block, channels: number): Float64Array {
  if (!block.batchNorm) return new Float64Array(channels).fill(1);
  const view = new GraphView(model.proto.graph!);
  const get = (name: string) => tensorToFloat32(view.constant(name)!);
  const scale = get(block.batchNorm.scale);
  const variance = get(block.batchNorm.variance);
  return Float64Array.from(scale, (s, o) => s / Math.sqrt(variance[o] + block.batchNorm!.epsilon));
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

/**
 * The preserve term's reference images through the original model: a block's key, pre-activation
 * and value per image. A few blocks' are kept, so repeated edits (the harness's trials, the web
 * editor) run them once.
 */
async function preserveTaps(
  model: OnnxModel,
  block: Block,
  items: DatasetItem[],
  spec: PreprocessSpec,
  runner: Runner,
  onImages: (done: number) => void,
): Promise<{ key: Float32Array; pre: Float32Array; value: Float32Array }[]> {
  const id = JSON.stringify([model.hash, block.name, spec, items.map((i) => i.file)]);
  const known = recentPreserve.get(id);
  if (known) return known;
  const taps: { key: Float32Array; pre: Float32Array; value: Float32Array }[] = [];
  for await (const batch of batches(items, spec, { batchSize: DEFAULT_BATCH })) {
    const out = await runner.run(batch.data, batch.dims);
    const [key, pre, value] = [block.key, block.preActivation, block.value].map((t) =>
      channelMajor(out.taps[t]),
    );
    const per = (t: Tapped, i: number) => imageOf(t, i, batch.items.length);
    batch.items.forEach((_, i) =>
      taps.push({ key: per(key, i), pre: per(pre, i), value: per(value, i) }),
    );
    onImages(taps.length);
  }
  recentPreserve.set(id, taps);
  for (const old of [...recentPreserve.keys()].slice(0, -RECENT_PRESERVE))
    recentPreserve.delete(old);
  return taps;
}

const RECENT_PRESERVE = 3;
const recentPreserve = new Map<
  string,
  { key: Float32Array; pre: Float32Array; value: Float32Array }[]
>();
