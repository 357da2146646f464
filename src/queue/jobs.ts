import { Job, Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { RuleditError } from '../errors.js';
import { QUEUE_NAME } from './connection.js';

/** A job to run on the workers: its content-derived id, the processor's name, plain data. */
export interface QueuedJob<D> {
  id: string;
  name: JobName;
  data: D;
  /** Says what the job is in progress and failure messages. */
  what: string;
}

export type JobName = 'trial' | 'stats-shard' | 'discover-cell';

export interface RunJobsOptions<R> {
  /** Called once per job as it completes, one call at a time (a caller may append to a file). */
  done: (id: string, result: R) => Promise<void>;
  say: (message: string) => void;
  /** 'trials', 'shards': the unit in progress lines. */
  unit: string;
  url: string;
  attempts?: number;
  /** Progress line period, ms (default 10 s). */
  progressEvery?: number;
}

/**
 * Adds the jobs to the queue and waits until each has completed or failed for good, handing
 * results to `done` as they come. Jobs already in Redis (same id: an earlier run of the same
 * work) are not added twice: finished ones are read back, failed ones tried again. Throws after
 * the last job when some failed, with the first failure's reason.
 */
export async function runJobs<D, R>(
  connection: () => Redis,
  jobs: QueuedJob<D>[],
  opts: RunJobsOptions<R>,
): Promise<void> {
  if (!jobs.length) return;
  const redis = connection();
  const blocking = connection();
  const queue = new Queue(QUEUE_NAME, { connection: redis });
  const events = new QueueEvents(QUEUE_NAME, { connection: blocking });
  const { say, unit } = opts;
  try {
    await events.waitUntilReady();
    const byId = new Map(jobs.map((j) => [j.id, j]));
    const total = byId.size;
    const failures: string[] = [];
    const start = performance.now();
    let resolved = 0;
    let lastSaid = 0;
    let finish!: () => void;
    const all = new Promise<void>((r) => (finish = r));
    let chain = Promise.resolve();

    const progress = async (force: boolean) => {
      const now = performance.now();
      if (!force && now - lastSaid < (opts.progressEvery ?? 10_000)) return;
      lastSaid = now;
      const running = await queue.getActiveCount();
      const eta = resolved
        ? `${(((total - resolved) * (now - start)) / resolved / 1000).toFixed(0)} s`
        : 'n/a';
      say(
        `queue: ${resolved - failures.length}/${total} ${unit} done, ${running} running, ` +
          `${failures.length} failed, ETA ${eta}`,
      );
    };
    // One check at a time, in order: `done` may write files.
    const check = (id: string) =>
      (chain = chain
        .then(async () => {
          const queued = byId.get(id);
          if (!queued) return;
          const job = await Job.fromId<D, R>(queue, id);
          const state = job ? await job.getState() : 'unknown';
          if (state === 'completed') {
            byId.delete(id);
            resolved++;
            await opts.done(id, job!.returnvalue as R);
            await queue.remove(id);
          } else if (state === 'failed') {
            byId.delete(id);
            resolved++;
            failures.push(`${queued.what}: ${job!.failedReason}`);
            say(`queue: failed: ${failures.at(-1)}`);
          } else return;
          await progress(byId.size === 0);
          if (byId.size === 0) finish();
        })
        .catch((e) => {
          failures.push(`coordinator: ${(e as Error).message}`);
          byId.clear();
          finish();
        }));
    events.on('completed', ({ jobId }) => void check(jobId));
    events.on('failed', ({ jobId }) => void check(jobId));
    await queue.addBulk(
      jobs.map((j) => ({
        name: j.name,
        data: j.data,
        opts: {
          jobId: j.id,
          attempts: opts.attempts ?? 3,
          backoff: { type: 'fixed', delay: 1000 },
        },
      })),
    );
    // Jobs found from an earlier run: finished ones are read now, failed ones tried again.
    for (const id of [...byId.keys()]) {
      const job = await Job.fromId(queue, id);
      if ((await job?.getState()) === 'failed') await job!.retry('failed');
      else void check(id);
    }
    say(
      `queue: ${total} ${unit} on ${opts.url}; waiting for workers (ruledit worker --queue ${opts.url})`,
    );
    const sweep = setInterval(() => {
      for (const id of byId.keys()) void check(id);
    }, 15_000); // events missed while Redis was unreachable
    await all;
    clearInterval(sweep);
    await chain;
    if (failures.length)
      throw new RuleditError(
        'queue-failed',
        `${failures.length} of ${total} ${unit} failed on the workers (rerun to retry them). First: ${failures[0]}`,
      );
  } finally {
    await events.close();
    await queue.close();
    redis.disconnect();
    blocking.disconnect();
  }
}
