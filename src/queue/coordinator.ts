import { METHODS } from '../edit/methods.js';
import type { HarnessExecutor } from '../eval/harness.js';
import type { TrialOutcome } from '../eval/trial.js';
import { connectQueue } from './connection.js';
import { runJobs } from './jobs.js';
import { shareStatistics } from './statistics.js';
import { saveStudy, studyOf } from './study.js';
import { trialJobId, type TrialJobData } from './trial-job.js';

export interface QueueOptions {
  /** Attempts per job when a worker throws (a worker that dies is BullMQ's stalled job: retried too). */
  attempts?: number;
  /** How often the coordinator prints its progress line, in ms (default 10 s). */
  progressEvery?: number;
}

/**
 * A harness executor on a BullMQ queue in Redis: the rewrite's key statistics are computed first,
 * sharded over the workers (queue/statistics.ts), then every trial becomes a job that any
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
      const layers = new Set(
        trials
          .filter((t) => METHODS[t.line.method.kind].statistics)
          .map((t) => t.line.method.grid[t.setting].layer as string | undefined),
      );
      study.stats = await shareStatistics(connection, classifier, study, [...layers], {
        ...opts,
        url,
        say,
        cacheDir: options.cacheDir,
      });
      const redis = connection();
      const hash = await saveStudy(redis, study).finally(() => redis.disconnect());
      const byId = new Map(trials.map((t) => [trialJobId(hash, t.line.key, t.setting), t]));
      await runJobs<TrialJobData, TrialOutcome>(
        connection,
        [...byId].map(([id, t]) => ({
          id,
          name: 'trial',
          what: `${t.line.where} ${t.line.method.name} setting ${t.setting + 1}`,
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
        })),
        { ...opts, url, say, unit: 'trials', done: (id, outcome) => done(byId.get(id)!, outcome) },
      );
    },
  };
}
