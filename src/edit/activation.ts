import type { Activation } from '../onnx/blocks.js';

/** The same for every kind of activation: its value, its slope, its piecewise-linear form. */
interface Kind<A extends Activation> {
  /** act(s), as ONNX defines the operator (the objective and the published schedule use it). */
  value(a: A, s: number): number;
  /** d act / ds; at a kink, the slope of the piece on its right (the subgradient Adam takes). */
  slope(a: A, s: number): number;
  /** The piecewise-linear form (see piecewiseLinear): exact knots, or fitted on an interval. */
  form(a: A): ({ knots: number[] } | { fit: [number, number] }) & { left: number; right: number };
}

type Kinds = { [K in Activation['kind']]: Kind<Activation & { kind: K }> };

/** Slope by a central difference: accurate to ~1e-10 for the GELUs, and keeps one formula. */
const numericSlope =
  <A extends Activation>(value: (a: A, s: number) => number) =>
  (a: A, s: number) =>
    (value(a, s + H) - value(a, s - H)) / (2 * H);
const H = 1e-5;

const hardSigmoid = (a: { alpha: number; beta: number }, s: number) =>
  Math.min(1, Math.max(0, a.alpha * s + a.beta));
const gelu = (_: unknown, s: number) => 0.5 * s * (1 + erf(s / Math.SQRT2));
const geluTanh = (_: unknown, s: number) =>
  0.5 * s * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (s + 0.044715 * s ** 3)));

/** Every activation ruledit models (onnx/blocks.ts recognizes them in a graph). */
const KINDS: Kinds = {
  none: { value: (_, s) => s, slope: () => 1, form: () => ({ knots: [0], left: 1, right: 1 }) },
  relu: {
    value: (_, s) => Math.max(0, s),
    slope: (_, s) => (s > 0 ? 1 : 0),
    form: () => ({ knots: [0], left: 0, right: 1 }),
  },
  relu6: {
    value: (_, s) => Math.min(6, Math.max(0, s)),
    slope: (_, s) => (s > 0 && s < 6 ? 1 : 0),
    form: () => ({ knots: [0, 6], left: 0, right: 0 }),
  },
  'leaky-relu': {
    value: (a, s) => (s >= 0 ? s : a.alpha * s),
    slope: (a, s) => (s >= 0 ? 1 : a.alpha),
    form: (a) => ({ knots: [0], left: a.alpha, right: 1 }),
  },
  'hard-sigmoid': {
    value: hardSigmoid,
    slope: (a, s) => {
      const u = a.alpha * s + a.beta;
      return u > 0 && u < 1 ? a.alpha : 0;
    },
    form: (a) => ({ knots: [-a.beta / a.alpha, (1 - a.beta) / a.alpha], left: 0, right: 0 }),
  },
  hardswish: {
    value: (a, s) => s * hardSigmoid(a, s),
    slope: (a, s) => {
      const u = a.alpha * s + a.beta;
      return u <= 0 ? 0 : u >= 1 ? 1 : u + a.alpha * s;
    },
    form: (a) => ({ fit: [-a.beta / a.alpha, (1 - a.beta) / a.alpha], left: 0, right: 1 }),
  },
  sigmoid: {
    value: (_, s) => sigmoid(s),
    slope: (_, s) => {
      const g = sigmoid(s);
      return g * (1 - g);
    },
    form: () => ({ fit: [-10, 10], left: 0, right: 0 }),
  },
  // SiLU and GELU: 0 on the far left, the identity on the far right (to ~1e-4 at +-12).
  silu: {
    value: (_, s) => s * sigmoid(s),
    slope: (_, s) => {
      const g = sigmoid(s);
      return g * (1 + s * (1 - g));
    },
    form: () => ({ fit: [-12, 12], left: 0, right: 1 }),
  },
  tanh: {
    value: (_, s) => Math.tanh(s),
    slope: (_, s) => 1 - Math.tanh(s) ** 2,
    form: () => ({ fit: [-6, 6], left: 0, right: 0 }),
  },
  gelu: {
    value: gelu,
    slope: numericSlope(gelu),
    form: () => ({ fit: [-12, 12], left: 0, right: 1 }),
  },
  'gelu-tanh': {
    value: geluTanh,
    slope: numericSlope(geluTanh),
    form: () => ({ fit: [-12, 12], left: 0, right: 1 }),
  },
};

const kindOf = <A extends Activation>(a: A) => KINDS[a.kind] as unknown as Kind<A>;

/** act(s), as ONNX defines the operator (the objective and the published schedule use it). */
export function activate(a: Activation, s: number): number {
  return kindOf(a).value(a, s);
}

/** d act / ds; at a kink, the slope of the piece on its right (the subgradient Adam takes). */
export function activationSlope(a: Activation, s: number): number {
  return kindOf(a).slope(a, s);
}

/**
 * A continuous piecewise-linear function: `values[k]` at `knots[k]` (ascending), linear between
 * them, and `slopes[0]` / `slopes[K]` beyond the first and last knot (`slopes[k]` is the slope
 * on the piece left of knot k).
 */
export interface PiecewiseLinear {
  knots: Float64Array;
  values: Float64Array;
  slopes: Float64Array;
}

/**
 * Largest gap between a smooth activation and its piecewise-linear form, relative to
 * max(|s|, scale), where scale is the size of the objective's pre-activations: an absolute gap
 * would swamp a block whose values are small (measured: on a MobileNetV3 block with values far
 * below 1e-3 the solver raised the loss at 1e-3 absolute). The exact solver minimizes the objective
 * with this form (its kinks are where the minimum of a line search can sit).
 */
export const PIECEWISE_TOLERANCE = 1e-3;

const memo = new Map<string, PiecewiseLinear>();

/**
 * The activation as a piecewise-linear function: exact for ReLU, ReLU6, leaky ReLU, hard
 * sigmoid and no activation; within PIECEWISE_TOLERANCE x max(|s|, scale) for the smooth ones
 * and hardswish (21-37 knots at scale 1, up to about 50 at small scales).
 */
export function piecewiseLinear(a: Activation, scale = 1): PiecewiseLinear {
  // Scales share forms within a factor of 2; above 1 the form at 1 is already fine enough.
  const floor = 2 ** Math.round(Math.log2(Math.min(1, Math.max(1e-6, scale))));
  const key = JSON.stringify([a, floor]);
  let pl = memo.get(key);
  if (!pl) memo.set(key, (pl = build(a, floor)));
  return pl;
}

function build(a: Activation, floor: number): PiecewiseLinear {
  const f = (s: number) => activate(a, s);
  const form = kindOf(a).form(a);
  const knots = 'knots' in form ? form.knots : adaptiveKnots(f, ...form.fit, floor);
  return fromKnots(knots, f, form.left, form.right);
}

function fromKnots(
  knots: number[],
  f: (s: number) => number,
  left: number,
  right: number,
): PiecewiseLinear {
  const values = knots.map(f);
  const slopes = [left];
  for (let k = 1; k < knots.length; k++)
    slopes.push((values[k] - values[k - 1]) / (knots[k] - knots[k - 1]));
  slopes.push(right);
  return {
    knots: Float64Array.from(knots),
    values: Float64Array.from(values),
    slopes: Float64Array.from(slopes),
  };
}

/**
 * Knots on [lo, hi] (and at 0 when inside), each chord as long as the tolerance allows: greedy,
 * the longest chord from the last knot whose gap to f, sampled at 15 interior points, stays
 * within 90% of the tolerance at each point (the margin covers the gap between samples).
 */
function adaptiveKnots(f: (s: number) => number, lo: number, hi: number, floor: number): number[] {
  const worst = (x0: number, x1: number) => {
    let w = 0;
    for (let t = 1; t < 16; t++) {
      const x = x0 + (t / 16) * (x1 - x0);
      const gap = Math.abs(f(x) - (f(x0) + (t / 16) * (f(x1) - f(x0))));
      w = Math.max(w, gap / (PIECEWISE_TOLERANCE * Math.max(Math.abs(x), floor)));
    }
    return w;
  };
  const knots = [lo];
  for (const end of lo < 0 && hi > 0 ? [0, hi] : [hi]) {
    while (knots.at(-1)! < end) {
      const x0 = knots.at(-1)!;
      let [short, long] = [0, end - x0];
      if (worst(x0, end) <= 0.9) short = long;
      for (let it = 0; it < 60 && long - short > 1e-12 * (end - lo); it++) {
        const h = (short + long) / 2;
        if (worst(x0, x0 + h) <= 0.9) short = h;
        else long = h;
      }
      knots.push(short > 0 ? x0 + short : end);
    }
  }
  return knots;
}

/** The piece of `s`: the number of knots at or left of it (0 .. K). */
export function pieceOf(pl: PiecewiseLinear, s: number): number {
  let [lo, hi] = [0, pl.knots.length];
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (pl.knots[mid] <= s) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The function's value at `s`, given its piece. */
export function valueIn(pl: PiecewiseLinear, piece: number, s: number): number {
  return piece === 0
    ? pl.values[0] + pl.slopes[0] * (s - pl.knots[0])
    : pl.values[piece - 1] + pl.slopes[piece] * (s - pl.knots[piece - 1]);
}

/** The points where the function equals v, away from its knots (one per piece it crosses v in). */
export function crossings(pl: PiecewiseLinear, v: number, out: number[]): void {
  const { knots, values, slopes } = pl;
  const K = knots.length;
  for (let piece = 0; piece <= K; piece++) {
    const m = slopes[piece];
    if (m === 0) continue;
    const [x0, y0] = piece === 0 ? [knots[0], values[0]] : [knots[piece - 1], values[piece - 1]];
    const s = x0 + (v - y0) / m;
    const left = piece === 0 ? -Infinity : knots[piece - 1];
    const right = piece === K ? Infinity : knots[piece];
    if (s > left && s < right) out.push(s);
  }
}

function sigmoid(s: number): number {
  return s >= 0 ? 1 / (1 + Math.exp(-s)) : Math.exp(s) / (1 + Math.exp(s));
}

/** erf to ~1e-7 (Abramowitz and Stegun 7.1.26): JavaScript has none. */
function erf(x: number): number {
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const y =
    1 -
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) *
      t *
      Math.exp(-x * x);
  return x >= 0 ? y : -y;
}
