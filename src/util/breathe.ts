/**
 * Long synchronous work (fine-tuning's TF.js steps, the published Adam schedule) would starve the
 * event loop: a queue worker's BullMQ lock is renewed by a timer, and a trial that holds the
 * thread longer than the lock (30 s by default) is declared stalled and fails (measured: a
 * MobileNetV3-Small fine-tuning trial of about a minute). Call the returned function in the loop:
 * at most every `ms` it yields one macrotask turn, so timers and I/O run.
 */
export function breather(ms = 100): () => Promise<void> | undefined {
  let last = performance.now();
  return () => {
    const now = performance.now();
    if (now - last < ms) return undefined;
    last = now;
    return new Promise((resolve) => setImmediate(resolve));
  };
}
