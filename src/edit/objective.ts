import type { Activation } from '../onnx/blocks.js';
import { activate } from './activation.js';

/**
 * The rewrite objective of docs/method.md section 3 for one block, in a form every solver shares:
 * the new pre-activation is base + gain[o] * (rows . theta[o]), where `rows` are the unfolded
 * inputs of the linear op (keys projected on d for the subspace solver, raw keys for the
 * published schedule) and theta[o] the free coefficients of output channel o.
 */
export interface Example {
  /** positions x features, row-major. */
  rows: Float64Array;
  /** Pre-activation of the block on x' under the original weights: channels x positions. */
  base: Float64Array;
  /** The block's value on the original x: channels x positions. */
  target: Float64Array;
  /** sqrt of the mask at the value resolution, per position. */
  weight: Float64Array;
}

export interface Objective {
  examples: Example[];
  channels: number;
  positions: number;
  features: number;
  /** Per output channel: d(pre-activation)/d(linear output), the BatchNormalization gain or 1. */
  gain: Float64Array;
  activation: Activation;
}

/** mean over exemplars, positions and channels of |sqrt(M) (act(pre') - v)|, for coefficients theta (channels x features). */
export function loss(obj: Objective, theta: Float64Array): number {
  const { channels, positions, features } = obj;
  let total = 0;
  for (const ex of obj.examples) {
    for (let o = 0; o < channels; o++) {
      const t = theta.subarray(o * features, (o + 1) * features);
      const g = obj.gain[o];
      for (let p = 0; p < positions; p++) {
        const w = ex.weight[p];
        if (w === 0) continue;
        let s = ex.base[o * positions + p];
        const row = p * features;
        for (let f = 0; f < features; f++) s += g * ex.rows[row + f] * t[f];
        total += w * Math.abs(activate(obj.activation, s) - ex.target[o * positions + p]);
      }
    }
  }
  return total / (obj.examples.length * positions * channels);
}
