import { piecewiseLinear, pieceOf, valueIn, type PiecewiseLinear } from './activation.js';
import type { Objective } from './objective.js';

/**
 * Our solver: the objective separates over output channels, and along any one coefficient it is
 * piecewise linear (|.| of a piecewise-linear activation of a line), so its exact minimum along
 * that coordinate lies at a breakpoint. With one feature (rank 1, 1x1 conv or dense) that is the
 * global optimum; with more, coordinate descent with exact line minimization, which never
 * increases the loss. Smooth activations (SiLU, GELU, ...) are taken in their piecewise-linear
 * form (activation.ts: within PIECEWISE_TOLERANCE), so for them the optimum is that form's.
 */
export function solveSubspace(
  obj: Objective,
  options: {
    sweeps?: number;
    /**
     * L1 penalty on the coefficients, relative to the steepest possible descent of the loss along
     * each coordinate. Without it the exact minimum can sit at a far breakpoint that buys a tiny
     * gain on the exemplar with a huge weight change (measured: |dW| of 100 for a 1e-4 gain).
     */
    penalty?: number;
  } = {},
): { theta: Float64Array; sweeps: number } {
  const { channels, positions, features, examples } = obj;
  const theta = new Float64Array(channels * features);
  // Only the (example, position) terms with weight count: a mask's outside and the positions a
  // preserve term leaves out cost nothing.
  const active: [number, number][] = [];
  examples.forEach((ex, e) => {
    for (let p = 0; p < positions; p++) if (ex.weight[p] !== 0) active.push([e, p]);
  });
  const act = piecewiseLinear(obj.activation, preActivationScale(obj, active));
  const n = active.length;
  // Per channel, current pre-activation at every (example, position), and the term data.
  const cur = new Float64Array(n);
  const a = new Float64Array(n);
  const b = new Float64Array(n);
  const v = new Float64Array(n);
  const c = new Float64Array(n);
  const maxSweeps = features === 1 ? 1 : (options.sweeps ?? 30);
  let sweeps = 0;
  for (let o = 0; o < channels; o++) {
    const g = obj.gain[o];
    active.forEach(([e, p], i) => {
      const ex = examples[e];
      cur[i] = ex.base[o * positions + p];
      v[i] = ex.target[o * positions + p];
      c[i] = ex.weight[p];
    });
    const t = theta.subarray(o * features, (o + 1) * features);
    for (let sweep = 0; sweep < maxSweeps; sweep++) {
      let moved = 0;
      for (let f = 0; f < features; f++) {
        for (let i = 0; i < n; i++) {
          const [e, p] = active[i];
          b[i] = g * examples[e].rows[p * features + f];
          a[i] = cur[i] - b[i] * t[f];
        }
        let steepest = 0;
        for (let i = 0; i < n; i++) steepest += c[i] * Math.abs(b[i]);
        const best = minimizeAlongLine(a, b, v, c, act, t[f], (options.penalty ?? 0) * steepest);
        const step = best - t[f];
        if (step !== 0) {
          for (let i = 0; i < n; i++) cur[i] += b[i] * step;
          t[f] = best;
          moved = Math.max(moved, Math.abs(step));
        }
      }
      sweeps = Math.max(sweeps, sweep + 1);
      if (moved < 1e-12) break;
    }
  }
  return { theta, sweeps };
}

/** Root mean square of the pre-activations and targets the objective weighs. */
function preActivationScale(obj: Objective, active: [number, number][]): number {
  let [sum, count] = [0, 0];
  for (const [e, p] of active) {
    const ex = obj.examples[e];
    for (let o = 0; o < obj.channels; o++) {
      const i = o * obj.positions + p;
      sum += ex.base[i] ** 2 + ex.target[i] ** 2;
      count += 2;
    }
  }
  return count ? Math.sqrt(sum / count) : 1;
}

/** Event buffers of the line search, grown as needed and reused (the search is synchronous). */
let eventX = new Float64Array(1024);
let eventDelta = new Float64Array(1024);
let eventKey = new Float64Array(1024);
let eventOrder = new Uint32Array(1024);

/**
 * The first n events in ascending order of x. Each key is x with its lowest mantissa bits
 * replaced by the event's index, so a native sort of plain doubles orders the events (3x faster
 * than a comparator on 145k events); x moves by at most 2^-(52 - bits) of itself, so only events
 * that close can swap, and the sweep reads the exact x back.
 */
function sortedEvents(n: number): Uint32Array {
  const bits = Math.max(1, Math.ceil(Math.log2(n)));
  const low = bits >= 32 ? 0xffffffff : (1 << bits) - 1;
  const keys = eventKey.subarray(0, n);
  keys.set(eventX.subarray(0, n));
  // The low 32 bits of each double (little-endian, as on every platform Node runs on).
  const words = new Uint32Array(keys.buffer, keys.byteOffset, 2 * n);
  for (let k = 0; k < n; k++) words[2 * k] = ((words[2 * k] & ~low) | k) >>> 0;
  keys.sort();
  const order = eventOrder.subarray(0, n);
  for (let k = 0; k < n; k++) order[k] = (words[2 * k] & low) >>> 0;
  return order;
}

/**
 * argmin over x of sum_i c_i |act(a_i + b_i x) - v_i| for a piecewise-linear act, exactly: a
 * sweep over the sorted breakpoints, carrying the slope. Among equal minima, the one nearest
 * `current`.
 *
 * Each breakpoint changes the slope by an amount known where it is made: with g(s) the slope of
 * |act(s) - v| in s, a term bending at s changes the slope in x by c |b| (g(s+) - g(s-)),
 * whichever way its line runs. So the sweep sorts (x, change) pairs and never re-evaluates terms.
 */
export function minimizeAlongLine(
  a: Float64Array,
  b: Float64Array,
  v: Float64Array,
  c: Float64Array,
  act: PiecewiseLinear,
  current: number,
  /** Weight of |x| added to the sum (0: none). */
  penalty = 0,
): number {
  const { knots, values, slopes } = act;
  const K = knots.length;
  const most = a.length * (2 * K + 1) + 1;
  if (eventX.length < most) {
    eventX = new Float64Array(most);
    eventDelta = new Float64Array(most);
    eventKey = new Float64Array(most);
    eventOrder = new Uint32Array(most);
  }
  let n = 0;
  const add = (x: number, delta: number) => {
    // A NaN or infinite breakpoint (a NaN key or value) would derail the sweep; weights and
    // statistics are checked finite before, this keeps the search total.
    if (!Number.isFinite(x) || delta === 0) return;
    eventX[n] = x;
    eventDelta[n++] = delta;
  };
  // The slope at x -> -inf: every term on its outer piece, the penalty descending.
  let slope = -penalty;
  if (penalty > 0) add(0, 2 * penalty);
  for (let i = 0; i < a.length; i++) {
    const [ai, bi, vi, ci] = [a[i], b[i], v[i], c[i]];
    if (bi === 0 || ci === 0) continue;
    const w = ci * Math.abs(bi);
    slope -= w * Math.abs(bi > 0 ? slopes[0] : slopes[K]);
    for (let k = 0; k < K; k++) {
      // g on both sides of the knot; at a knot on the target, each side's own sign.
      const gap = values[k] - vi;
      const below = slopes[k] * (gap !== 0 ? Math.sign(gap) : -Math.sign(slopes[k]));
      const above = slopes[k + 1] * (gap !== 0 ? Math.sign(gap) : Math.sign(slopes[k + 1]));
      add((knots[k] - ai) / bi, w * (above - below));
    }
    for (let piece = 0; piece <= K; piece++) {
      const m = slopes[piece];
      if (m === 0) continue;
      const k0 = piece === 0 ? 0 : piece - 1;
      const s = knots[k0] + (vi - values[k0]) / m;
      if ((piece > 0 && s <= knots[piece - 1]) || (piece < K && s >= knots[piece])) continue;
      add((s - ai) / bi, 2 * w * Math.abs(m));
    }
  }
  if (!n) return current;
  const order = sortedEvents(n);
  const f = (x: number) => {
    let total = penalty * Math.abs(x);
    for (let i = 0; i < a.length; i++) {
      if (c[i] === 0) continue;
      const s = a[i] + b[i] * x;
      total += c[i] * Math.abs(valueIn(act, pieceOf(act, s), s) - v[i]);
    }
    return total;
  };
  let x = eventX[order[0]];
  let value = f(x);
  let best = x;
  let bestValue = value;
  const tol = 1e-12 * Math.max(1, Math.abs(value));
  for (let k = 0; k < n; k++) {
    const e = order[k];
    const next = eventX[e];
    if (next !== x) {
      value += slope * (next - x);
      x = next;
      if (
        value < bestValue - tol ||
        (value <= bestValue + tol && Math.abs(x - current) < Math.abs(best - current))
      ) {
        [best, bestValue] = [x, Math.min(value, bestValue)];
      }
    }
    slope += eventDelta[e];
  }
  // Guard against drift of the running sum: keep the current value unless really better.
  return f(best) < f(current) ? best : current;
}
