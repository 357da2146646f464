import cliProgress from 'cli-progress';

export interface Progress {
  /** Advance by `n` units (images, steps). */
  tick(n: number): void;
  done(): void;
}

/**
 * A bar with rate and ETA on a terminal; on a pipe or CI log, a plain line every few seconds.
 * Always on stderr, so stdout stays clean for results (`--json`).
 */
export function progress(label: string, total: number, unit = 'img'): Progress {
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream: process.stderr,
        format: `${label} [{bar}] {value}/{total} ${unit} | {rate} ${unit}/s | ETA {eta_formatted}`,
        hideCursor: true,
        clearOnComplete: true,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    const start = Date.now();
    bar.start(total, 0, { rate: '-' });
    let value = 0;
    return {
      tick(n) {
        value += n;
        bar.update(value, { rate: (value / ((Date.now() - start) / 1000)).toFixed(1) });
      },
      done: () => bar.stop(),
    };
  }
  const start = Date.now();
  let value = 0;
  let last = start;
  const line = () => {
    const s = (Date.now() - start) / 1000;
    // The last line says how long it took: a rate over no time (a cached index) means nothing.
    if (value >= total)
      return process.stderr.write(`${label}: ${value}/${total} ${unit} in ${s.toFixed(1)} s\n`);
    const rate = value / Math.max(s, 1e-9);
    // Before the first item there is no rate to tell an ETA from.
    const eta = rate > 0 ? `${Math.round((total - value) / rate)}s` : 'unknown';
    process.stderr.write(
      `${label}: ${value}/${total} ${unit} (${rate.toFixed(1)} ${unit}/s, ETA ${eta})\n`,
    );
  };
  return {
    tick(n) {
      value += n;
      if (Date.now() - last >= 5000) {
        last = Date.now();
        line();
      }
    },
    done() {
      line();
    },
  };
}
