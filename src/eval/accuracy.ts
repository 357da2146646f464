/** Running top-1/top-5 accuracy, per-class accuracy and confusions over labelled predictions. */
export interface AccuracyReport {
  n: number;
  /** Percentages (0-100). */
  top1: number;
  top5: number;
  perClass: { class: number; name?: string; n: number; top1: number }[];
  /** Most frequent (true class -> predicted class) mistakes, most frequent first. */
  confusions: {
    class: number;
    predicted: number;
    count: number;
    name?: string;
    predictedName?: string;
  }[];
}

export class Accuracy {
  private n = 0;
  private top1 = 0;
  private top5 = 0;
  private readonly perClass = new Map<number, { n: number; correct: number }>();
  private readonly confusions = new Map<string, number>();

  /** `logits` holds `labels.length` rows of `classes` scores. */
  add(logits: Float32Array, classes: number, labels: number[]): void {
    labels.forEach((label, row) => {
      const ranked = topK(logits.subarray(row * classes, (row + 1) * classes), 5);
      const stats = this.perClass.get(label) ?? { n: 0, correct: 0 };
      this.perClass.set(label, stats);
      this.n++;
      stats.n++;
      if (ranked.includes(label)) this.top5++;
      if (ranked[0] === label) {
        this.top1++;
        stats.correct++;
      } else {
        const key = `${label}:${ranked[0]}`;
        this.confusions.set(key, (this.confusions.get(key) ?? 0) + 1);
      }
    });
  }

  report(names?: (i: number) => string | undefined, maxConfusions = 10): AccuracyReport {
    const pct = (k: number, n: number) => (n ? (100 * k) / n : NaN);
    return {
      n: this.n,
      top1: pct(this.top1, this.n),
      top5: pct(this.top5, this.n),
      perClass: [...this.perClass.entries()]
        .sort(([a], [b]) => a - b)
        .map(([c, s]) => ({ class: c, name: names?.(c), n: s.n, top1: pct(s.correct, s.n) })),
      confusions: [...this.confusions.entries()]
        .sort((a, b) => b[1] - a[1])
        .slice(0, maxConfusions)
        .map(([key, count]) => {
          const [c, p] = key.split(':').map(Number);
          return { class: c, predicted: p, count, name: names?.(c), predictedName: names?.(p) };
        }),
    };
  }
}

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

/** Softmax of one row, for the probabilities `predict` prints. */
export function softmax(row: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) max = Math.max(max, row[i]);
  const out = new Float64Array(row.length);
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += out[i] = Math.exp(row[i] - max);
  return out.map((v) => v / sum);
}
