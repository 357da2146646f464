import type { Activation } from '../onnx/blocks.js';
import { activate } from './activation.js';
import type { Windows } from './windows.js';

/**
 * The rewrite objective of docs/method.md section 3 for one block, in a form every solver shares:
 * the new pre-activation is base + gain[o] * (rows . theta[o]), where `rows` are the unfolded
 * inputs of the linear op (keys projected on d for the subspace solver, raw keys for the
 * published schedule) and theta[o] the free coefficients of output channel o. The value at a
 * value position is the max of the activated pre-activation over its window (one position
 * without a MaxPool).
 */
export interface Example {
  /** pre-activation positions x features, row-major. */
  rows: Float64Array;
  /** Pre-activation of the block on x' under the original weights: channels x positions. */
  base: Float64Array;
  /** The block's value on the original x: channels x value positions. */
  target: Float64Array;
  /** sqrt of the mask at the value resolution, per value position. */
  weight: Float64Array;
}

export interface Objective {
  examples: Example[];
  channels: number;
  /** Positions of the pre-activation (of `rows` and `base`). */
  positions: number;
  /** The value positions, each over its pre-activation positions. */
  windows: Windows;
  features: number;
  /** Per output channel: d(pre-activation)/d(linear output), the BatchNormalization gain or 1. */
  gain: Float64Array;
  activation: Activation;
}

/** The number of value positions. */
export const valuePositions = (obj: Objective) => obj.windows.starts.length - 1;

/** The new pre-activation of channel o at every position, into `out`. */
export function preActivations(
  obj: Objective,
  ex: Example,
  o: number,
  t: Float64Array,
  out: Float64Array,
): Float64Array {
  const { positions, features } = obj;
  const g = obj.gain[o];
  for (let p = 0; p < positions; p++) {
    const row = p * features;
    let acc = 0;
    for (let f = 0; f < features; f++) acc += ex.rows[row + f] * t[f];
    out[p] = ex.base[o * positions + p] + g * acc;
  }
  return out;
}

/** The position in value position q's window whose activated pre-activation is largest (the first on ties). */
export function windowArgmax(obj: Objective, pre: Float64Array, q: number): number {
  const { starts, members } = obj.windows;
  let at = members[starts[q]];
  // Without a MaxPool (one member) there is nothing to compare: Adam's hot loop takes this path.
  if (starts[q + 1] - starts[q] === 1) return at;
  let best = activate(obj.activation, pre[at]);
  for (let m = starts[q] + 1; m < starts[q + 1]; m++) {
    const value = activate(obj.activation, pre[members[m]]);
    if (value > best) [best, at] = [value, members[m]];
  }
  return at;
}

/** mean over exemplars, value positions and channels of |sqrt(M) (value' - v)|, for coefficients theta (channels x features). */
export function loss(obj: Objective, theta: Float64Array): number {
  const { channels, features } = obj;
  const values = valuePositions(obj);
  const pre = new Float64Array(obj.positions);
  let total = 0;
  for (const ex of obj.examples) {
    for (let o = 0; o < channels; o++) {
      preActivations(obj, ex, o, theta.subarray(o * features, (o + 1) * features), pre);
      for (let q = 0; q < values; q++) {
        const w = ex.weight[q];
        if (w === 0) continue;
        const s = pre[windowArgmax(obj, pre, q)];
        total += w * Math.abs(activate(obj.activation, s) - ex.target[o * values + q]);
      }
    }
  }
  return total / (obj.examples.length * values * channels);
}
