import { Job, Queue, QueueEvents } from 'bullmq';
import { RuleditError } from '../errors.js';
import type { HarnessExecutor, TrialJob } from '../eval/harness.js';
import type { TrialOutcome } from '../eval/trial.js';
import { connectQueue, QUEUE_NAME } from './connection.js';
import { saveStudy, studyOf } from './study.js';
import { trialJobId, type TrialJobData } from './trial-job.js';

export interface QueueOptions {
  /** Attempts per trial when a worker throws (a worker that dies is BullMQ's stalled job: retried too). */
  attempts?: number;
  /** How often the coordinator prints its progress line, in ms (default 10 s; 0: on every trial). */
  progressEvery?: number;
}

/**
 * A harness executor on a BullMQ queue in Redis: every trial becomes a job that any
 * `ruledit worker` takes; outcomes come back to this process, which writes the results lines
 * (once per key: the harness ignores a trial reported twice). Jobs are named by content, so a
 * rerun after an interruption finds the finished ones and waits for the running ones.
 */
export async function queueExecutor(
  url: string,
  opts: QueueOptions = {},
): Promise<HarnessExecutor> {
  const connection = await connectQueue(url);
  return {
    async run(classifier, options, trials, done) {
      const say = options.onProgress ?? (() => {});
      if (!trials.length) return;
      say('queue: hashing the files the workers will read');
      const study = await studyOf(classifier, options);
      const redis = connection();
      const queue = new Queue<TrialJobData, TrialOutcome>(QUEUE_NAME, { connection: redis });
      const blocking = connection();
      const events = new QueueEvents(QUEUE_NAME, { connection: blocking });
      try {
        const hash = await saveStudy(redis, study);
        await events.waitUntilReady();
        const byId = new Map(trials.map((t) => [trialJobId(hash, t.line.key, t.setting), t]));
        const left = new Map(
          [...byId].reduce(
            (m, [, t]) => m.set(t.line.key, (m.get(t.line.key) ?? 0) + 1),
            new Map<string, number>(),
          ),
        );
        const total = byId.size;
        const failures: string[] = [];
        const start = performance.now();
        let resolved = 0;
        let lastSaid = 0;
        let finish!: () => void;
        const all = new Promise<void>((r) => (finish = r));
        let chain = Promise.resolve();

        const progress = async (force = false) => {
          const now = performance.now();
          if (!force && now - lastSaid < (opts.progressEvery ?? 10_000)) return;
          lastSaid = now;
          const running = await queue.getActiveCount();
          const rate = resolved / (now - start);
          const eta = resolved ? ((total - resolved) / rate / 1000).toFixed(0) + ' s' : 'n/a';
          say(
            `queue: ${resolved - failures.length}/${total} trials done, ${running} running, ` +
              `${failures.length} failed, ETA ${eta}`,
          );
        };
        // One check at a time, in order: `done` appends to the results file.
        const check = (id: string) =>
          (chain = chain
            .then(async () => {
              const trial = byId.get(id);
              if (!trial) return;
              const job = await Job.fromId<TrialJobData, TrialOutcome>(queue, id);
              const state = job ? await job.getState() : 'unknown';
              if (state === 'completed') {
                byId.delete(id);
                resolved++;
                await done(trial, job!.returnvalue);
                await lineDone(trial);
              } else if (state === 'failed') {
                byId.delete(id);
                resolved++;
                failures.push(
                  `${trial.line.where} ${trial.line.method.name} setting ${trial.setting + 1}: ${job!.failedReason}`,
                );
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
        // A line's jobs leave Redis once its results line is written.
        const lineDone = async (t: TrialJob) => {
          const n = left.get(t.line.key)! - 1;
          left.set(t.line.key, n);
          if (n === 0)
            await Promise.all(
              t.line.method.grid.map((_, s) => queue.remove(trialJobId(hash, t.line.key, s))),
            );
        };
        events.on('completed', ({ jobId }) => void check(jobId));
        events.on('failed', ({ jobId }) => void check(jobId));
        await queue.addBulk(
          [...byId].map(([jobId, t]) => ({
            name: 'trial',
            data: {
              study: hash,
              testset: t.line.testset,
              caseId: t.line.caseId,
              k: t.line.k,
              target: t.line.case.target,
              method: t.line.method,
              setting: t.setting,
              where: t.line.where,
            },
            opts: {
              jobId,
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
          `queue: ${total} trials on ${url}; waiting for workers (ruledit worker --queue ${url})`,
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
            `${failures.length} trial(s) failed on the workers; their lines are not written (rerun to retry them). First: ${failures[0]}`,
          );
      } finally {
        await events.close();
        await queue.close();
        redis.disconnect();
        blocking.disconnect();
      }
    },
  };
}
