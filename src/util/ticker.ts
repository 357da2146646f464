/** Seconds between two progress lines of a long stage. */
const TICK_SECONDS = 5;

/**
 * Progress of a long stage, said at most every TICK_SECONDS (none for a stage that ends
 * sooner): a block with a huge map can spend minutes solving or capturing, never silently.
 */
export function ticker(say: (message: string) => void, message: (done: number) => string) {
  let last = performance.now();
  return (done: number) => {
    const now = performance.now();
    if (now - last < TICK_SECONDS * 1000) return;
    last = now;
    say(message(done));
  };
}
