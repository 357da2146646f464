import { range, type Objective } from './objective.js';

/**
 * Our solver: the objective separates over output channels, and along any one coefficient it is
 * piecewise linear (|.| of a clipped line), so its exact minimum along that coordinate lies at a
 * breakpoint. With one feature (rank 1, 1x1 conv or dense) that is the global optimum; with more,
 * coordinate descent with exact line minimization, which never increases the loss.
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
  const [lo, hi] = range(obj.activation);
  const theta = new Float64Array(channels * features);
  // Only the (example, position) terms with weight count: a mask's outside and the positions a
  // preserve term leaves out cost nothing.
  const active: [number, number][] = [];
  examples.forEach((ex, e) => {
    for (let p = 0; p < positions; p++) if (ex.weight[p] !== 0) active.push([e, p]);
  });
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
        const best = minimizeAlongLine(a, b, v, c, lo, hi, t[f], (options.penalty ?? 0) * steepest);
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

/**
 * argmin over x of sum_i c_i |clip(a_i + b_i x, lo, hi) - v_i|, exactly: a sweep over the sorted
 * breakpoints, carrying the slope. Among equal minima, the one nearest `current`.
 */
export function minimizeAlongLine(
  a: Float64Array,
  b: Float64Array,
  v: Float64Array,
  c: Float64Array,
  lo: number,
  hi: number,
  current: number,
  /** Weight of |x| added to the sum (0: none); its bend at 0 is owned by index -1. */
  penalty = 0,
): number {
  const events: number[] = penalty > 0 ? [0] : [];
  const owner: number[] = penalty > 0 ? [-1] : [];
  for (let i = 0; i < a.length; i++) {
    if (b[i] === 0 || c[i] === 0) continue;
    // The term bends where the line enters the clip range and where it crosses the target.
    const bends = [lo, hi, v[i] > lo && v[i] < hi ? v[i] : NaN];
    for (const s of bends) {
      // A NaN breakpoint (a NaN key or value) would never match itself below and hang the
      // search; weights and statistics are checked finite before, this keeps the search total.
      const x = (s - a[i]) / b[i];
      if (!Number.isFinite(x)) continue;
      events.push(x);
      owner.push(i);
    }
  }
  if (!events.length) return current;
  const order = events.map((_, k) => k).sort((x, y) => events[x] - events[y]);
  const f = (x: number) => {
    let total = penalty * Math.abs(x);
    for (let i = 0; i < a.length; i++) {
      if (c[i] === 0) continue;
      total += c[i] * Math.abs(Math.min(hi, Math.max(lo, a[i] + b[i] * x)) - v[i]);
    }
    return total;
  };
  const slopeOf = (i: number, x: number) => {
    if (i < 0) return penalty * Math.sign(x);
    const s = a[i] + b[i] * x;
    return s > lo && s < hi ? c[i] * b[i] * Math.sign(s - v[i]) : 0;
  };
  const xs: number[] = [];
  for (const k of order) if (!xs.length || events[k] !== xs[xs.length - 1]) xs.push(events[k]);
  // Owners of the events at each distinct breakpoint.
  const owners: number[][] = xs.map(() => []);
  let j = 0;
  for (const k of order) {
    while (xs[j] !== events[k]) j++;
    owners[j].push(owner[k]);
  }
  const mid = (k: number) => (k + 1 < xs.length ? (xs[k] + xs[k + 1]) / 2 : xs[k] + 1);
  let value = f(xs[0]);
  let slope = 0;
  for (let i = penalty > 0 ? -1 : 0; i < a.length; i++)
    if (i < 0 || (b[i] !== 0 && c[i] !== 0)) slope += slopeOf(i, mid(0));
  let best = xs[0];
  let bestValue = value;
  const tol = 1e-12 * Math.max(1, Math.abs(value));
  for (let k = 1; k < xs.length; k++) {
    value += slope * (xs[k] - xs[k - 1]);
    if (
      value < bestValue - tol ||
      (value <= bestValue + tol && Math.abs(xs[k] - current) < Math.abs(best - current))
    ) {
      [best, bestValue] = [xs[k], Math.min(value, bestValue)];
    }
    // Only the terms with a breakpoint here change their slope.
    for (const i of owners[k]) slope += slopeOf(i, mid(k)) - slopeOf(i, mid(k - 1));
  }
  // Guard against drift of the running sum: keep the current value unless really better.
  return f(best) < f(current) ? best : current;
}
