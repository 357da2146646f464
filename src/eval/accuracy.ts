import { topK } from '../runtime/logits.js';

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
