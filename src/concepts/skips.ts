/** Images or annotations left out of a result, counted by reason, so nothing is dropped silently. */
export interface SkipReport {
  reason: string;
  count: number;
  /** The first few files or ids concerned, to start looking. */
  examples: string[];
}

const EXAMPLES = 5;

export class Skips {
  private readonly byReason = new Map<string, SkipReport>();

  add(reason: string, example: string, count = 1): void {
    let r = this.byReason.get(reason);
    if (!r) this.byReason.set(reason, (r = { reason, count: 0, examples: [] }));
    r.count += count;
    if (r.examples.length < EXAMPLES && !r.examples.includes(example)) r.examples.push(example);
  }

  list(): SkipReport[] {
    return [...this.byReason.values()];
  }
}

/** One line per reason: '12 images skipped: mask is empty (e.g. a.png, b.png)'. */
export function describeSkips(skips: SkipReport[]): string[] {
  return skips.map(
    (s) =>
      `skipped ${s.count}: ${s.reason} (e.g. ${s.examples.join(', ')}${s.count > s.examples.length ? ', ...' : ''})`,
  );
}
