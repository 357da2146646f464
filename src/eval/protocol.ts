/**
 * The measurements of docs/method.md section 9. Plain functions over predictions, so any editing
 * method (rewrite, fine-tuning) is scored the same way.
 */

/** One test image of a (concept, style) case, with the three predictions the protocol compares. */
export interface CaseImage {
  label: number;
  /** Whether the image belongs to the class the exemplars came from. */
  target: boolean;
  /** Transformed with the exemplars' style image ('same') or another image of that style ('heldout'). */
  style: 'same' | 'heldout';
  /** Original model on the untransformed image, and on the transformed one; edited model on the transformed one. */
  cleanBefore: number;
  transformedBefore: number;
  transformedAfter: number;
}

export interface ErrorsCorrected {
  /** 100 (E_pre - E_post) / max(E_pre, tolerance), floored at -100; NaN when there was no error to fix. */
  value: number;
  /** Errors before and after, among images the model got right before the transformation. */
  before: number;
  after: number;
  /** Images counted (correct before the transformation). */
  images: number;
}

/**
 * Errors corrected among images the original model classified correctly before the
 * transformation. With nothing to fix the ratio is undefined: NaN, not 0 or 100.
 */
export function errorsCorrected(images: CaseImage[], tolerance = 1): ErrorsCorrected {
  const counted = images.filter((i) => i.cleanBefore === i.label);
  const before = counted.filter((i) => i.transformedBefore !== i.label).length;
  const after = counted.filter((i) => i.transformedAfter !== i.label).length;
  const value =
    before === 0 ? NaN : Math.max(-100, (100 * (before - after)) / Math.max(before, tolerance));
  return { value, before, after, images: counted.length };
}

/** The four numbers the paper reports: {target, other classes} x {same style image, held-out}. */
export function fourWay(
  images: CaseImage[],
  tolerance = 1,
): Record<'targetSame' | 'targetHeldout' | 'otherSame' | 'otherHeldout', ErrorsCorrected> {
  const pick = (target: boolean, style: 'same' | 'heldout') =>
    errorsCorrected(
      images.filter((i) => i.target === target && i.style === style),
      tolerance,
    );
  return {
    targetSame: pick(true, 'same'),
    targetHeldout: pick(true, 'heldout'),
    otherSame: pick(false, 'same'),
    otherHeldout: pick(false, 'heldout'),
  };
}

/** Accuracy points lost on the ordinary (untransformed) test set: before - after, in percent. */
export function cleanAccuracyDrop(labels: number[], before: number[], after: number[]): number {
  if (labels.length === 0) return NaN;
  const correct = (pred: number[]) => pred.filter((p, i) => p === labels[i]).length;
  return (100 * (correct(before) - correct(after))) / labels.length;
}

export interface Candidate<S> {
  setting: S;
  /** Errors corrected on the validation split (the number to maximize; NaN ranks last). */
  score: number;
  cleanDrop: number;
}

/**
 * Hyperparameter selection of the paper: the best validation score among settings whose clean
 * accuracy drop is at most `maxDrop` points (default 0.25). Undefined when every setting breaks
 * too much.
 */
export function selectSetting<C extends Candidate<unknown>>(
  candidates: C[],
  maxDrop = 0.25,
): C | undefined {
  const allowed = candidates.filter((c) => c.cleanDrop <= maxDrop);
  const rank = (c: C) => (Number.isNaN(c.score) ? -Infinity : c.score);
  return allowed.reduce<C | undefined>(
    (best, c) => (!best || rank(c) > rank(best) ? c : best),
    undefined,
  );
}
