import { RuleditError } from '../errors.js';
import type { Block } from '../onnx/blocks.js';
import { GraphView } from '../onnx/graph.js';
import type { OnnxModel } from '../onnx/model.js';
import { tensorToFloat32 } from '../onnx/tensor.js';
import type { Tapped } from '../runtime/session.js';
import type { Direction } from './direction.js';
import type { Example, Objective } from './objective.js';
import { unfold } from './unfold.js';
import { identityWindows, poolWindows } from './windows.js';

/**
 * How many of the preserved images' value positions are held: three times the exemplars' masked
 * positions, at most 2048. The solver's cost grows with the positions (k x k kernels solve by
 * coordinate descent), so a large map is sampled on a strided grid that shifts from image to image.
 */
const PRESERVE_PER_EXEMPLAR_POSITION = 3;
const PRESERVE_POSITIONS = 2048;
/**
 * The most memory an objective may take. The README's MobileNetV2 edit takes 60 MB; the largest
 * map of a 224x224 network (112x112 x 96 channels, 53 images) about 1.1 GB.
 */
const OBJECTIVE_BYTES = 4 * 2 ** 30;

/** The shapes the objective lives on, read off the exemplars' taps (channel-major). */
export interface Geometry {
  cin: number;
  cout: number;
  /** The key grid. */
  kh: number;
  kw: number;
  /** The value grid (after the block's MaxPool, if any). */
  vh: number;
  vw: number;
  /** The pre-activation grid: the value's, or more positions before the block's MaxPool. */
  ph: number;
  pw: number;
  /** Kernel offsets per input channel (kh x kw of a conv's weight; 1 for a linear layer). */
  offsets: number;
  /** Coefficients solved per output channel: (rank or cin) x offsets. */
  features: number;
}

export function geometryOf(
  block: Block,
  taps: { keys: Tapped; base: Tapped; target: Tapped },
  features: (cin: number) => number,
): Geometry {
  const [cin, kh = 1, kw = 1] = taps.keys.dims.slice(1);
  const [cout, vh = 1, vw = 1] = taps.target.dims.slice(1);
  const [ph = 1, pw = 1] = taps.base.dims.slice(2);
  const offsets = block.conv ? block.weightShape[2] * block.weightShape[3] : 1;
  return { cin, cout, kh, kw, vh, vw, ph, pw, offsets, features: features(cin) * offsets };
}

/**
 * The objective holds, per exemplar and preserved reference image, every channel's pre-activation
 * and value in float64 and the unfolded keys: a block with a huge map (a 1007x1007 one, found by
 * bench/fuzz.ts) would take minutes and then all memory. Refused before it is built.
 */
export function checkObjectiveSize(block: Block, g: Geometry, images: number, preserved: boolean) {
  const valuePositions = g.vh * g.vw;
  const perImage =
    8 * (g.cout * (g.ph * g.pw + valuePositions) + g.ph * g.pw * g.features) +
    4 * (g.cin * g.kh * g.kw + g.cout * (g.ph * g.pw + valuePositions));
  if (images * perImage > OBJECTIVE_BYTES)
    throw new RuleditError(
      'block-too-large',
      `block '${block.name}' has a ${g.ph}x${g.pw} map of ${g.cout} channels: its objective over ${images} images (exemplars${preserved ? ' and preserved reference images' : ''}) would hold ${((images * perImage) / 2 ** 30).toFixed(1)} GB, beyond ruledit's ${OBJECTIVE_BYTES / 2 ** 30} GB; choose a deeper layer (\`layer\`) or give the model a smaller input`,
    );
}

export interface ObjectiveParts {
  /** One image's example: its keys, pre-activations and values (channel-major) and the weight of each value position. */
  example: (
    k: Float32Array,
    pre: Float32Array,
    value: Float32Array,
    weight: Float64Array,
  ) => Example;
  objective: (examples: Example[]) => Objective;
}

/**
 * The objective over the block's tail (docs/method.md section 3): pre' = base + gain * conv(theta,
 * rows), with rows the keys unfolded, projected on d in the rank-r subspace (`direction`) or whole.
 */
export function objectiveOf(
  model: OnnxModel,
  block: Block,
  g: Geometry,
  direction: Direction | undefined,
): ObjectiveParts {
  const { cin, kh, kw, ph, pw } = g;
  const keyPositions = kh * kw;
  const windows = block.pool ? poolWindows(block.pool, ph, pw) : identityWindows(ph * pw);
  if (windows.starts.length - 1 !== g.vh * g.vw)
    throw new Error(
      `internal: the pool windows give ${windows.starts.length - 1} positions, the value has ${g.vh * g.vw}`,
    );
  const gain = bnGain(model, block, g.cout);
  const example = (
    k: Float32Array,
    pre: Float32Array,
    value: Float32Array,
    weight: Float64Array,
  ): Example => {
    let map: Float64Array;
    if (direction) {
      const { rank, d } = direction;
      map = new Float64Array(rank * keyPositions);
      for (let r = 0; r < rank; r++)
        for (let c = 0; c < cin; c++) {
          const dc = d[r * cin + c];
          if (dc === 0) continue;
          for (let p = 0; p < keyPositions; p++)
            map[r * keyPositions + p] += dc * k[c * keyPositions + p];
        }
    } else {
      map = Float64Array.from(k);
    }
    const unfolded = unfold(block, map, direction ? direction.rank : cin, kh, kw);
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
  const objective = (examples: Example[]): Objective => ({
    examples,
    channels: g.cout,
    positions: ph * pw,
    windows,
    features: g.features,
    gain,
    activation: block.activation,
  });
  return { example, objective };
}

/**
 * The preserve term's weights (4b): which value positions of each preserved image are held, each
 * weighing so that all of them together weigh `preserve` times the exemplars.
 */
export function preserveWeights(
  images: number,
  valuePositions: number,
  exemplars: Example[],
  preserve: number,
): { weights: Float64Array[]; positions: number } {
  const exemplarWeight = exemplars.reduce((a, ex) => a + ex.weight.reduce((x, y) => x + y, 0), 0);
  const masked = exemplars.reduce((a, ex) => a + ex.weight.filter((x) => x > 0).length, 0);
  const budget = Math.min(PRESERVE_POSITIONS, PRESERVE_PER_EXEMPLAR_POSITION * masked);
  const stride = Math.max(1, Math.ceil((images * valuePositions) / budget));
  const selected = Array.from({ length: images }, (_, k) =>
    Array.from({ length: valuePositions }, (_, p) => (p + k) % stride === 0),
  );
  const positions = selected.flat().filter(Boolean).length;
  const weights = selected.map((sel) =>
    Float64Array.from(sel, (on) => (on ? (preserve * exemplarWeight) / positions : 0)),
  );
  return { weights, positions };
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
