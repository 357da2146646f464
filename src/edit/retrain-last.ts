import type { Exemplar } from '../concepts/exemplar.js';
import type { DatasetItem } from '../data/dataset.js';
import { batchDims, type PreprocessSpec } from '../data/preprocess.js';
import { RuleditError } from '../errors.js';
import { listBlocks, type Block } from '../onnx/blocks.js';
import type { EditRecord } from '../onnx/history.js';
import type { OnnxModel } from '../onnx/model.js';
import { readBias, readWeight, storedWeight } from '../onnx/weights.js';
import { top1Rows } from '../runtime/logits.js';
import { stackRows, withTraces, type Traces } from '../runtime/block-trace.js';
import { Runner, type Tapped } from '../runtime/session.js';
import { spread } from '../util/spread.js';
import { ticker } from '../util/ticker.js';
import { guardedStrength, referenceSplit, type GuardOptions, type GuardReport } from './guard.js';
import { METHODS, type TunedOptions } from './methods.js';
import { applyChanges } from './record.js';
import { SoftmaxRegression } from './softmax-regression.js';

const D = METHODS['retrain-last'].options;

/** The registry's tunable options (methods.ts: steps, lr, references), and what a call gives. */
export interface RetrainLastOptions extends TunedOptions<'retrain-last'> {
  spec: PreprocessSpec;
  /** The class the transformed exemplars should be called. */
  label: number;
  /** Reference images: the guard holds some out (as the rewrite's); the rest anchor the retraining. */
  statsData?: DatasetItem[];
  guard?: GuardOptions | false;
  threads?: number;
  /** The captures of the caller's repeated edits of this model (see Traces). */
  traces?: Traces;
  onProgress?: (message: string) => void;
}

export interface RetrainLastReport {
  block: string;
  label: number;
  /** Reference images the retraining kept to their original top-1. */
  references: number;
  /** The training objective (see retrainLast) of the original layer and of the saved one (the kept strength). */
  lossBefore: number;
  lossAfter: number;
  /** Fraction of the retrained change that was applied (after the guard's back-off). */
  strength: number;
  guard?: GuardReport;
  seconds: number;
}

/**
 * The third baseline, last-layer retraining (deep feature reweighting, Kirichenko et al. 2022):
 * only the final linear layer learns, by full-batch Adam on the penultimate features of the
 * transformed exemplars, toward `label`, and of reference images, toward the original model's own
 * top-1 (so it needs no label beyond the exemplars'). Each group weighs half of the cross-entropy,
 * as DFR balances its groups. DFR trains a fresh logistic regression on a balanced labelled set;
 * with a few exemplars and 1000 classes that would forget every class no reference image shows,
 * so this starts from the original layer. The change (weight and bias) then passes the same guard
 * as the rewrite's and is recorded for exact revert like every edit.
 */
export async function retrainLast(
  model: OnnxModel,
  exemplars: Exemplar[],
  options: RetrainLastOptions,
): Promise<{ model: OnnxModel; record: EditRecord; report: RetrainLastReport }> {
  return withTraces(options.traces, model, options.spec, options.threads, (traces) =>
    retrainTraced(model, exemplars, options, traces),
  );
}

async function retrainTraced(
  model: OnnxModel,
  exemplars: Exemplar[],
  options: RetrainLastOptions,
  traces: Traces,
): Promise<{ model: OnnxModel; record: EditRecord; report: RetrainLastReport }> {
  const start = performance.now();
  const say = options.onProgress ?? (() => {});
  const { spec, label } = options;
  const steps = options.steps ?? D.steps.default;
  const lr = options.lr ?? D.lr.default;
  if (!exemplars.length) throw new RuleditError('bad-exemplar', 'no exemplar given');
  const block = lastLayer(model);
  const [out, inp] = block.weightShape;
  if (!Number.isInteger(label) || label < 0 || label >= out)
    throw new RuleditError(
      'bad-label',
      `label must be a class index between 0 and ${out - 1}, got ${label}`,
    );
  const reference = referenceSplit(options.statsData, options.guard);
  const items = spread(reference.stats ?? [], options.references ?? D.references.default);
  if (!items.length)
    throw new RuleditError(
      'no-reference',
      'last-layer retraining needs reference images (`statsData`): without them it forgets every other class',
    );

  // 1. Penultimate features, and the original top-1 of the reference images as their labels.
  const W = readWeight(model, block);
  const b = readBias(model, block);
  const runner = await Runner.create(model, { taps: [block.key], threads: options.threads });
  let ex: Tapped;
  try {
    const transformed = await runner.runImages(
      exemplars.map((e) => e.transformed),
      (n) => batchDims(spec, n),
    );
    ex = features(block, transformed.taps[block.key]);
    checkLogits(block, ex, transformed.logits, W, b);
  } finally {
    await runner.release();
  }
  const read = await traces.read(
    [block.key],
    items.map((i) => i.file),
    ticker(say, (k) => `retrain-last: ${k}/${items.length} reference images run`),
  );
  const refs = features(block, {
    data: stackRows(read.images.map((i) => i.tensors[0])),
    dims: [items.length, ...read.dims[0]],
  });
  const own = read.images.map((i) => top1Rows({ data: i.logits, dims: [1, i.logits.length] })[0]);
  const ne = ex.dims[0];
  const nr = refs.dims[0];
  say(
    `retraining ${block.name} (${out}x${inp}) on ${ne} transformed exemplars toward class ${label} and ${nr} reference images toward their own top-1: adam lr ${lr}, ${steps} steps`,
  );

  // 2. Full-batch Adam on the weighted cross-entropy, half for each group.
  const x = new Float32Array((ne + nr) * inp);
  x.set(ex.data);
  x.set(refs.data, ne * inp);
  const regression = await SoftmaxRegression.create(
    {
      x,
      labels: [...new Array(ne).fill(label), ...own],
      weights: [...new Array(ne).fill(0.5 / ne), ...new Array(nr).fill(0.5 / nr)],
      W,
      b,
    },
    options.threads,
  );
  // A layer without a bias tensor keeps its (zero) bias: there is nowhere to write one.
  const hasBias = block.bias !== undefined;
  let lossBefore: number, lossAfter: number, guard: GuardReport | undefined;
  let kept: { weight: Float32Array; bias: Float32Array };
  try {
    const tick = ticker(say, (step) => `retrain-last: step ${step}/${steps}`);
    const fit = await regression.fit({ W, b }, { steps, lr, bias: hasBias, onStep: tick });
    lossBefore = fit.lossBefore;
    const dW = Float32Array.from(fit.W, (v, i) => v - W[i]);
    const dB = Float32Array.from(fit.b, (v, i) => v - b[i]);
    const scaled = (s: number) => ({
      weight: Float32Array.from(W, (v, i) => v + s * dW[i]),
      bias: Float32Array.from(b, (v, i) => v + s * dB[i]),
    });

    // 3. The guard, on images neither the statistics nor the retraining saw.
    guard = await guardedStrength(traces.block(block), reference, {
      measure: (g, s) => {
        const { weight, bias } = scaled(s);
        return g.measure(weight, s, hasBias ? bias : undefined);
      },
      say,
    });
    kept = scaled(guard?.strength ?? 1);
    lossAfter = (await regression.gradient(kept.weight, kept.bias)).loss;
  } finally {
    await regression.release();
  }
  const strength = guard?.strength ?? 1;
  const changes = new Map([[block.weight, storedWeight(block, kept.weight)]]);
  if (hasBias) changes.set(block.bias!, kept.bias);
  const edited = applyChanges(model, changes, {
    method: 'retrain-last',
    block: block.name,
    layerIndex: block.index,
    label,
    steps,
    lr,
    references: nr,
    exemplars: exemplars.map((e) => e.hashes),
    strength,
    ...(guard ? { guard } : {}),
    loss: { before: lossBefore, after: lossAfter },
  });
  const report: RetrainLastReport = {
    block: block.name,
    label,
    references: nr,
    lossBefore,
    lossAfter,
    strength,
    ...(guard ? { guard } : {}),
    seconds: (performance.now() - start) / 1000,
  };
  return { ...edited, report };
}

/**
 * The final linear layer: the last of the graph's linear layers, which must map pooled features
 * (a vector, or a 1x1 map) straight to the logits.
 */
export function lastLayer(model: OnnxModel): Block {
  const block = listBlocks(model.proto.graph!).at(-1);
  if (!block?.editable || block.chain.length !== 1)
    throw new RuleditError(
      'unsupported-model',
      block
        ? `the last linear layer '${block.name}' (${block.chain.join(' > ')}) is not a plain linear map to the logits${block.reason ? `: ${block.reason}` : ''}`
        : 'the model has no linear layer',
    );
  return block;
}

/** A [n, in] or [n, in, 1, 1] key as [n, in] rows; a larger map is not pooled features. */
function features(block: Block, key: Tapped): Tapped {
  const [n, c, ...rest] = key.dims;
  if (rest.some((d) => d !== 1))
    throw new RuleditError(
      'unsupported-model',
      `the last linear layer '${block.name}' reads a ${rest.join('x')} map, not pooled features: last-layer retraining needs a classifier that ends in a linear layer`,
    );
  return { data: key.data, dims: [n, c] };
}

/** The layer must give the logits themselves (no softmax or other layer after it). */
function checkLogits(block: Block, x: Tapped, logits: Tapped, W: Float32Array, b: Float32Array) {
  const [n, inp] = x.dims;
  const out = b.length;
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < n; i++)
    for (let o = 0; o < out; o++) {
      let z = b[o];
      for (let k = 0; k < inp; k++) z += x.data[i * inp + k] * W[o * inp + k];
      worst = Math.max(worst, Math.abs(z - logits.data[i * out + o]));
      scale = Math.max(scale, Math.abs(z));
    }
  if (logits.dims.at(-1) !== out || worst > 1e-3 * Math.max(1, scale))
    throw new RuleditError(
      'unsupported-model',
      `the model's output is not the last linear layer '${block.name}' (off by ${worst.toExponential(2)}): last-layer retraining needs the logits as the output`,
    );
}
