import {
  crossings,
  piecewiseLinear,
  pieceOf,
  valueIn,
  type PiecewiseLinear,
} from './activation.js';
import { valuePositions, type Objective } from './objective.js';
import type { Windows } from './windows.js';

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
    /** Told after each output channel is solved, with how many are. */
    onChannel?: (solved: number) => void;
  } = {},
): { theta: Float64Array; sweeps: number } {
  const { channels, positions, features, examples, windows } = obj;
  const values = valuePositions(obj);
  const theta = new Float64Array(channels * features);
  // Terms: the (example, value position) pairs with weight (a mask's outside and the positions a
  // preserve term leaves out cost nothing). Lines: the (example, position) pairs of the terms'
  // windows, each once.
  const terms: [number, number][] = [];
  const lines: [number, number][] = [];
  const lineOf = new Map<number, number>();
  const termLines: number[] = [];
  const termStarts = [0];
  examples.forEach((ex, e) => {
    for (let q = 0; q < values; q++) {
      if (ex.weight[q] === 0) continue;
      terms.push([e, q]);
      for (let m = windows.starts[q]; m < windows.starts[q + 1]; m++) {
        const p = windows.members[m];
        const key = e * positions + p;
        if (!lineOf.has(key)) lineOf.set(key, lines.push([e, p]) - 1);
        termLines.push(lineOf.get(key)!);
      }
      termStarts.push(termLines.length);
    }
  });
  // Without a MaxPool each term is its own line: the line search's plain case.
  const pooled = termLines.length > terms.length;
  const termWindows = pooled
    ? { starts: Int32Array.from(termStarts), members: Int32Array.from(termLines) }
    : undefined;
  const act = piecewiseLinear(obj.activation, scaleOf(obj, terms, lines));
  // Per channel, the current pre-activation of every line, and the term data.
  const cur = new Float64Array(lines.length);
  const a = new Float64Array(lines.length);
  const b = new Float64Array(lines.length);
  const v = new Float64Array(terms.length);
  const c = new Float64Array(terms.length);
  const maxSweeps = features === 1 ? 1 : (options.sweeps ?? 30);
  let sweeps = 0;
  for (let o = 0; o < channels; o++) {
    const g = obj.gain[o];
    lines.forEach(([e, p], i) => (cur[i] = examples[e].base[o * positions + p]));
    terms.forEach(([e, q], i) => {
      v[i] = examples[e].target[o * values + q];
      c[i] = examples[e].weight[q];
    });
    const t = theta.subarray(o * features, (o + 1) * features);
    for (let sweep = 0; sweep < maxSweeps; sweep++) {
      let moved = 0;
      for (let f = 0; f < features; f++) {
        for (let i = 0; i < lines.length; i++) {
          const [e, p] = lines[i];
          b[i] = g * examples[e].rows[p * features + f];
          a[i] = cur[i] - b[i] * t[f];
        }
        let steepest = 0;
        for (let i = 0; i < terms.length; i++) {
          let most = 0;
          for (let m = termStarts[i]; m < termStarts[i + 1]; m++)
            most = Math.max(most, Math.abs(b[termLines[m]]));
          steepest += c[i] * most;
        }
        const penalty = (options.penalty ?? 0) * steepest;
        const best = minimizeAlongLine(a, b, v, c, act, t[f], penalty, termWindows);
        const step = best - t[f];
        if (step !== 0) {
          for (let i = 0; i < lines.length; i++) cur[i] += b[i] * step;
          t[f] = best;
          moved = Math.max(moved, Math.abs(step));
        }
      }
      sweeps = Math.max(sweeps, sweep + 1);
      if (moved < 1e-12) break;
    }
    options.onChannel?.(o + 1);
  }
  return { theta, sweeps };
}

/** Root mean square of the pre-activations and targets the objective weighs. */
function scaleOf(obj: Objective, terms: [number, number][], lines: [number, number][]): number {
  let [sum, count] = [0, 0];
  const values = valuePositions(obj);
  for (let o = 0; o < obj.channels; o++) {
    for (const [e, p] of lines) sum += obj.examples[e].base[o * obj.positions + p] ** 2;
    for (const [e, q] of terms) sum += obj.examples[e].target[o * values + q] ** 2;
    count += lines.length + terms.length;
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
 * argmin over x of sum_i c_i |act(max_{j in W_i} (a_j + b_j x)) - v_i| for a piecewise-linear,
 * non-decreasing-where-pooled act, exactly: a sweep over the sorted breakpoints, carrying the
 * slope. W_i is term i's window of lines (`windows`; without it, line i alone, as every block
 * without a MaxPool has). Among equal minima, the one nearest `current`.
 *
 * Each breakpoint changes the slope by an amount known where it is made. For a term of one line:
 * with g(s) the slope of |act(s) - v| in s, a bend at s changes the slope in x by
 * c |b| (g(s+) - g(s-)), whichever way the line runs. A pooled term is the same function of the
 * upper envelope of its lines; its few breakpoints are found and its slope is read between them.
 * So the sweep sorts (x, change) pairs and never re-evaluates terms.
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
  windows?: Windows,
): number {
  const { knots, values, slopes } = act;
  const K = knots.length;
  const most = (windows ? windows.members.length : a.length) * (2 * K + 2) + 1;
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
  const levels: number[] = [];
  // The slope at x -> -inf: every term on its outer piece, the penalty descending.
  let slope = -penalty;
  if (penalty > 0) add(0, 2 * penalty);
  for (let i = 0; i < v.length; i++) {
    const [vi, ci] = [v[i], c[i]];
    if (ci === 0) continue;
    if (windows && windows.starts[i + 1] - windows.starts[i] > 1) {
      slope += pooledTerm(i, windows.members.subarray(windows.starts[i], windows.starts[i + 1]));
      continue;
    }
    const line = windows ? windows.members[windows.starts[i]] : i;
    const [ai, bi] = [a[line], b[line]];
    if (bi === 0) continue;
    const w = ci * Math.abs(bi);
    slope -= w * Math.abs(bi > 0 ? slopes[0] : slopes[K]);
    for (let k = 0; k < K; k++) {
      // g on both sides of the knot; at a knot on the target, each side's own sign.
      const gap = values[k] - vi;
      const below = slopes[k] * (gap !== 0 ? Math.sign(gap) : -Math.sign(slopes[k]));
      const above = slopes[k + 1] * (gap !== 0 ? Math.sign(gap) : Math.sign(slopes[k + 1]));
      add((knots[k] - ai) / bi, w * (above - below));
    }
    levels.length = 0;
    crossings(act, vi, levels);
    for (const s of levels) add((s - ai) / bi, 2 * w * Math.abs(slopes[pieceOf(act, s)]));
  }

  /**
   * One pooled term's breakpoints into the events: the kinks of the upper envelope of its lines,
   * and where each envelope segment meets a knot of act or a level where act equals the target.
   * Returns its slope at x -> -inf.
   */
  function pooledTerm(i: number, members: Int32Array): number {
    const [vi, ci] = [v[i], c[i]];
    const envelope = upperEnvelope(members, a, b);
    const points = [...envelope.kinks];
    levels.length = 0;
    levels.push(...knots);
    crossings(act, vi, levels);
    envelope.lines.forEach((j, k) => {
      if (b[j] === 0) return;
      const lo = k > 0 ? envelope.kinks[k - 1] : -Infinity;
      const hi = k < envelope.kinks.length ? envelope.kinks[k] : Infinity;
      for (const s of levels) {
        const x = (s - a[j]) / b[j];
        if (x > lo && x < hi) points.push(x);
      }
    });
    points.sort((x, y) => x - y);
    const slopeAt = (x: number) => {
      let j = members[0];
      for (const m of members) if (a[m] + b[m] * x > a[j] + b[j] * x) j = m;
      const s = a[j] + b[j] * x;
      const piece = pieceOf(act, s);
      return ci * b[j] * slopes[piece] * Math.sign(valueIn(act, piece, s) - vi);
    };
    const beyond = (x: number, side: number) => x + side * Math.max(1, Math.abs(x));
    if (!points.length) return slopeAt(0);
    const left = slopeAt(beyond(points[0], -1));
    let before = left;
    for (let k = 0; k < points.length; k++) {
      if (k + 1 < points.length && points[k + 1] === points[k]) continue;
      const after = slopeAt(
        k + 1 < points.length ? (points[k] + points[k + 1]) / 2 : beyond(points[k], 1),
      );
      add(points[k], after - before);
      before = after;
    }
    return left;
  }
  if (!n) return current;
  const order = sortedEvents(n);
  const f = (x: number) => {
    let total = penalty * Math.abs(x);
    for (let i = 0; i < v.length; i++) {
      if (c[i] === 0) continue;
      let s = -Infinity;
      if (!windows) s = a[i] + b[i] * x;
      else
        for (let m = windows.starts[i]; m < windows.starts[i + 1]; m++) {
          const j = windows.members[m];
          s = Math.max(s, a[j] + b[j] * x);
        }
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

/**
 * The upper envelope of the lines a_j + b_j x (j in members): the lines on it from x = -inf to
 * +inf (slopes ascending) and the x where each hands over to the next.
 */
function upperEnvelope(
  members: Int32Array,
  a: Float64Array,
  b: Float64Array,
): { lines: number[]; kinks: number[] } {
  // By slope, and among equal slopes the highest first: the others are never on top.
  const sorted = [...members].sort((i, j) => b[i] - b[j] || a[j] - a[i]);
  const lines: number[] = [];
  const kinks: number[] = [];
  const meet = (i: number, j: number) => (a[i] - a[j]) / (b[j] - b[i]);
  for (const j of sorted) {
    if (lines.length && b[lines.at(-1)!] === b[j]) continue;
    // The last line is off the envelope when j overtakes the one before it no later than it did.
    while (lines.length >= 2 && meet(lines.at(-1)!, j) <= kinks.at(-1)!) {
      lines.pop();
      kinks.pop();
    }
    if (lines.length) kinks.push(meet(lines.at(-1)!, j));
    lines.push(j);
  }
  return { lines, kinks };
}
