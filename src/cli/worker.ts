import type { Command } from 'commander';
import { ABOUT } from './commands.js';
import { startWorker } from '../queue/worker.js';
import { cacheOption, intOption, positiveIntOption, threadsOption } from './options.js';

export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description(ABOUT.worker)
    .requiredOption('--queue <url>', 'Redis of the queue: redis://HOST:PORT/DB')
    .option('--concurrency <n>', 'jobs at once in this process', positiveIntOption, 1)
    .addOption(threadsOption())
    .addOption(cacheOption())
    .option(
      '--lock-seconds <s>',
      "a dead worker's trial is given to another after about this long",
      intOption,
      30,
    )
    .action(workerCommand);
}

async function workerCommand(opts: {
  queue: string;
  concurrency: number;
  threads: number;
  cache?: string;
  lockSeconds: number;
}): Promise<void> {
  const say = (m: string) => process.stderr.write(`${m}\n`);
  const worker = await startWorker(opts.queue, {
    concurrency: opts.concurrency,
    threads: opts.threads,
    cacheDir: opts.cache,
    lockMs: Math.max(1, opts.lockSeconds) * 1000,
    onProgress: say,
  });
  say(
    `worker: taking jobs from ${opts.queue} (concurrency ${opts.concurrency}); Ctrl-C stops after the running ones`,
  );
  // A stop finishes the running jobs first, so none is left for the stalled-job check.
  await new Promise<void>((resolve) => {
    const stop = () => {
      say('worker: stopping after the running jobs');
      void worker.close().then(resolve);
    };
    process.removeAllListeners('SIGINT').removeAllListeners('SIGTERM');
    process.once('SIGINT', stop).once('SIGTERM', stop);
  });
}
