// What an edit is expected to cost in clean top-1 accuracy, from the predictions alone: the
// guard's unit of harm (docs/method.md section 6). Measured against labels on three real models in
// bench/guard-harm.ts.

/**
 * The original model's belief that each class is right, softened or sharpened by a temperature:
 * q_c ∝ p_c^(1/T), which is softmax(logits / T). T = 1 trusts the model's own probabilities.
 */
export function tempered(probs: Float32Array, classes: number, temperature: number): Float32Array {
  if (temperature === 1) return probs;
  const out = new Float32Array(probs.length);
  for (let r = 0; r < probs.length / classes; r++) {
    const row = probs.subarray(r * classes, (r + 1) * classes);
    let max = 0;
    for (const p of row) max = Math.max(max, p);
    let sum = 0;
    for (let c = 0; c < classes; c++)
      sum += out[r * classes + c] = row[c] > 0 ? Math.exp(Math.log(row[c] / max) / temperature) : 0;
    for (let c = 0; c < classes; c++) out[r * classes + c] /= sum;
  }
  return out;
}

/**
 * The temperature that makes the model's probabilities calibrated on labelled images (least
 * negative log-likelihood; Guo et al. 2017). A model trained with label smoothing, such as
 * torchvision's MobileNetV3, is underconfident (T < 1): its top-1 is right far more often than
 * its probability says, so a flip between two classes of similar probability costs accuracy
 * which its raw probabilities would call free.
 */
export function fitTemperature(probs: Float32Array, classes: number, labels: number[]): number {
  // log(p_c / max p) of each row once: a temperature only divides them. Each trial then computes
  // the labels' q as tempered() does, bit for bit (its float32 rounding included), without the
  // rest of the array.
  const logs = new Float64Array(probs.length);
  for (let r = 0; r < labels.length; r++) {
    const row = probs.subarray(r * classes, (r + 1) * classes);
    let max = 0;
    for (const p of row) max = Math.max(max, p);
    for (let c = 0; c < classes; c++)
      if (row[c] > 0) logs[r * classes + c] = Math.log(row[c] / max);
  }
  const nll = (logT: number) => {
    const temperature = Math.exp(logT);
    let s = 0;
    labels.forEach((l, r) => {
      let sum = 0;
      for (let i = r * classes; i < (r + 1) * classes; i++)
        if (probs[i] > 0) sum += Math.exp(logs[i] / temperature);
      const at = r * classes + l;
      const q =
        probs[at] > 0 ? Math.fround(Math.fround(Math.exp(logs[at] / temperature)) / sum) : 0;
      s -= Math.log(Math.max(q, 1e-12));
    });
    return s;
  };
  // The NLL is convex in 1/T: a golden-section search over log T in [1/20, 20].
  let [lo, hi] = [Math.log(1 / 20), Math.log(20)];
  const g = (Math.sqrt(5) - 1) / 2;
  for (let k = 0; k < 40; k++) {
    const [a, b] = [hi - g * (hi - lo), lo + g * (hi - lo)];
    if (nll(a) < nll(b)) hi = b;
    else lo = a;
  }
  return Math.exp((lo + hi) / 2);
}

/**
 * The expected clean top-1 drop (points) of moving each image's top-1 from `was` to `now`, were
 * each image's label drawn from `belief`: an image costs belief[was] - belief[now] (a move from a
 * class believed 0.9 to one believed 0.05 costs 0.85; between two classes of 0.1, nothing).
 */
export function expectedDrop(
  belief: Float32Array,
  classes: number,
  was: Int32Array,
  now: Int32Array,
): number {
  let cost = 0;
  for (let i = 0; i < was.length; i++)
    if (now[i] !== was[i]) cost += belief[i * classes + was[i]] - belief[i * classes + now[i]];
  return (100 * cost) / Math.max(1, was.length);
}
