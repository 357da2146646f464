/**
 * What an edit changed on labelled images, from the top-1 before and after: accuracy (percent;
 * NaN over no images) and the images it fixed and broke. The web editor, the demo and the CLI
 * read their figures from here.
 */
export interface Changes {
  before: number;
  after: number;
  /** Indices of images wrong before and right after. */
  fixed: number[];
  /** Indices of images right before and wrong after. */
  broken: number[];
}

export const percent = (k: number, n: number) => (n ? (100 * k) / n : NaN);

/** Changes over the images `which` (default: all). */
export function changes(
  labels: ArrayLike<number | undefined>,
  before: ArrayLike<number>,
  after: ArrayLike<number>,
  which: number[] = Array.from(labels, (_, i) => i),
): Changes {
  const right = (p: ArrayLike<number>, i: number) => p[i] === labels[i];
  return {
    before: percent(which.filter((i) => right(before, i)).length, which.length),
    after: percent(which.filter((i) => right(after, i)).length, which.length),
    fixed: which.filter((i) => !right(before, i) && right(after, i)),
    broken: which.filter((i) => right(before, i) && !right(after, i)),
  };
}

/** The images of each class, in class order (classes without images left out). */
export function byClass(labels: ArrayLike<number | undefined>): Map<number, number[]> {
  const classes = new Map<number, number[]>();
  Array.from(labels).forEach((l, i) => {
    if (l !== undefined) classes.set(l, [...(classes.get(l) ?? []), i]);
  });
  return new Map([...classes].sort((a, b) => a[0] - b[0]));
}
