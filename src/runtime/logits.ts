// Scores of a classifier's logits, shared by every stage that reads predictions (the guard, eval,
// predict, the page).

/** Indices of the k largest scores, largest first. */
export function topK(scores: ArrayLike<number>, k: number): number[] {
  const best: number[] = [];
  for (let i = 0; i < scores.length; i++) {
    if (best.length === k && scores[i] <= scores[best[k - 1]]) continue;
    let j = Math.min(best.length, k - 1);
    best[j] = i;
    while (j > 0 && scores[best[j - 1]] < scores[i]) {
      best[j] = best[j - 1];
      best[--j] = i;
    }
  }
  return best;
}

/** The top-1 class of each row of [N, classes] logits (the first of equal maxima). */
export function top1Rows(logits: { data: ArrayLike<number>; dims: number[] }): Int32Array {
  const classes = logits.dims[logits.dims.length - 1];
  const rows = logits.data.length / classes;
  return Int32Array.from({ length: rows }, (_, r) => {
    let best = 0;
    for (let c = 1; c < classes; c++)
      if (logits.data[r * classes + c] > logits.data[r * classes + best]) best = c;
    return best;
  });
}

/** Softmax of one row of logits. */
export function softmax(row: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) max = Math.max(max, row[i]);
  const out = new Float64Array(row.length);
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += out[i] = Math.exp(row[i] - max);
  return out.map((v) => v / sum);
}
