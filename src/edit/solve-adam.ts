import { breather } from '../util/breathe.js';
import { activate, activationSlope } from './activation.js';
import { preActivations, valuePositions, windowArgmax, type Objective } from './objective.js';

export interface AdamOptions {
  lr: number;
  steps: number;
  /** Project the coefficients onto span(d) every this many steps and at the end (0 = never). */
  projectEvery: number;
  /** rank x dim orthonormal directions in key space (needed when projecting). */
  d?: Float64Array;
  rank?: number;
  /** Key channels and kernel offsets of a feature row: features = dim * offsets. */
  dim?: number;
  onStep?: (step: number, loss: number) => void;
  /** Report the loss every this many steps (it costs a pass). */
  reportEvery?: number;
}

/**
 * The published schedule (docs/method.md section 3): Adam on the full weight change, reset every
 * `projectEvery` steps (and at the end) to its projection on span(d) along the input-channel axis.
 * With projectEvery = 0 it is the unrestricted full-rank ablation.
 */
export async function solveAdam(
  obj: Objective,
  options: AdamOptions,
): Promise<{ theta: Float64Array; lastStepLoss: number }> {
  const { channels, positions, features, examples } = obj;
  const values = valuePositions(obj);
  const theta = new Float64Array(channels * features);
  const m = new Float64Array(theta.length);
  const s2 = new Float64Array(theta.length);
  const grad = new Float64Array(theta.length);
  const [beta1, beta2, eps] = [0.9, 0.999, 1e-8];
  const norm = 1 / (examples.length * values * channels);
  const pre = new Float64Array(positions);
  let lastStepLoss = NaN;
  const breathe = breather();
  for (let step = 1; step <= options.steps; step++) {
    await breathe();
    grad.fill(0);
    let total = 0;
    for (const ex of examples) {
      for (let o = 0; o < channels; o++) {
        const t = theta.subarray(o * features, (o + 1) * features);
        preActivations(obj, ex, o, t, pre);
        const gr = grad.subarray(o * features, (o + 1) * features);
        for (let q = 0; q < values; q++) {
          const w = ex.weight[q];
          if (w === 0) continue;
          // Through a MaxPool the gradient flows to the window's largest position only.
          const p = windowArgmax(obj, pre, q);
          const s = pre[p];
          const r = activate(obj.activation, s) - ex.target[o * values + q];
          total += w * Math.abs(r);
          const slope = activationSlope(obj.activation, s);
          if (slope === 0 || r === 0) continue;
          const coef = w * Math.sign(r) * slope * obj.gain[o] * norm;
          const row = p * features;
          for (let f = 0; f < features; f++) gr[f] += coef * ex.rows[row + f];
        }
      }
    }
    lastStepLoss = total * norm;
    if (options.onStep && (step % (options.reportEvery ?? 100) === 0 || step === 1))
      options.onStep(step, lastStepLoss);
    const c1 = 1 - beta1 ** step;
    const c2 = 1 - beta2 ** step;
    for (let i = 0; i < theta.length; i++) {
      m[i] = beta1 * m[i] + (1 - beta1) * grad[i];
      s2[i] = beta2 * s2[i] + (1 - beta2) * grad[i] * grad[i];
      theta[i] -= (options.lr * (m[i] / c1)) / (Math.sqrt(s2[i] / c2) + eps);
    }
    if (options.projectEvery > 0 && (step % options.projectEvery === 0 || step === options.steps))
      project(theta, channels, options);
  }
  return { theta, lastStepLoss };
}

/** theta[o, :, offset] <- its projection on span(d), for every output channel and kernel offset. */
function project(theta: Float64Array, channels: number, options: AdamOptions): void {
  const { d, rank = 1, dim } = options;
  if (!d || !dim) throw new Error('projection needs the directions d and the key dimension');
  const offsets = theta.length / channels / dim;
  const dots = new Float64Array(rank);
  for (let o = 0; o < channels; o++) {
    const base = o * dim * offsets;
    for (let u = 0; u < offsets; u++) {
      // Feature layout is (channel, offset): index = c * offsets + u.
      for (let r = 0; r < rank; r++) {
        let acc = 0;
        for (let c = 0; c < dim; c++) acc += d[r * dim + c] * theta[base + c * offsets + u];
        dots[r] = acc;
      }
      for (let c = 0; c < dim; c++) {
        let acc = 0;
        for (let r = 0; r < rank; r++) acc += dots[r] * d[r * dim + c];
        theta[base + c * offsets + u] = acc;
      }
    }
  }
}
