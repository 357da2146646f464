import { UnrecoverableError, Worker } from 'bullmq';
import { parsePreprocess } from '../data/preprocess.js';
import { gramSum } from '../edit/stats.js';
import { isRuleditError } from '../errors.js';
import { inProcessDiscovery, type UnitPredictions } from '../eval/discover.js';
import {
  trialContext,
  type PreparedCase,
  type TrialContext,
  type TrialOutcome,
} from '../eval/trial.js';
import { findBlock, listBlocks } from '../onnx/blocks.js';
import type { OnnxModel } from '../onnx/model.js';
import { connectQueue, QUEUE_NAME } from './connection.js';
import type { DiscoverJobData } from './discovery.js';
import type { JobName } from './jobs.js';
import { sharedStatistics, toWire, type ShardJobData, type WireGramSum } from './statistics.js';
import { checkedModel, checkFiles, openStudy, type Study } from './study.js';
import type { TrialJobData } from './trial-job.js';

export interface WorkerOptions {
  /** Trials at once in this process (default 1: ONNX Runtime already uses the cores). */
  concurrency?: number;
  threads?: number;
  cacheDir?: string;
  /**
   * How long a trial's lock lasts without renewal, in ms (default 30 s): a worker that dies is
   * noticed after about this long, and its trial given to another worker.
   */
  lockMs?: number;
  onProgress?: (message: string) => void;
}

export interface RunningWorker {
  /** Stops taking trials and waits for the running ones. */
  close(): Promise<void>;
}

/** Cases kept prepared per study (a case's settings and methods usually come one after another). */
const KEPT_CASES = 4;

/**
 * A queue worker: takes harness trials, statistics shards and discovery units from the queue,
 * checks that the files it reads are the coordinator's, runs each as the single process does
 * (eval/trial.ts, edit/stats.ts, eval/discover.ts) and hands back the result. A refusal (bad
 * input, different bytes) fails the job at once; a crash is retried.
 */
export async function startWorker(
  url: string,
  options: WorkerOptions = {},
): Promise<RunningWorker> {
  const connection = await connectQueue(url);
  const say = options.onProgress ?? (() => {});
  const redis = connection();
  // Studies, statistics shards and discovery units name a model: it is read and checked once.
  const models = new Map<string, Promise<OnnxModel>>();
  const modelOf = (m: { path: string; hash: string }) => {
    const id = `${m.path}\0${m.hash}`;
    if (!models.has(id)) models.set(id, checkedModel(m));
    models.get(id)!.catch(() => models.delete(id));
    return models.get(id)!;
  };
  const studies = new Map<
    string,
    Promise<{ study: Study; ctx: TrialContext; cases: Map<string, Promise<PreparedCase>> }>
  >();
  const studyOf = (hash: string) => {
    if (!studies.has(hash))
      studies.set(
        hash,
        openStudy(redis, hash, modelOf).then(async ({ study, classifier }) => {
          const stats = await sharedStatistics(redis, study.stats ?? []);
          say(
            `study ${hash}: ${classifier.model.path} and ${Object.keys(study.files).length} files checked`,
          );
          return {
            study,
            cases: new Map(),
            ctx: trialContext(classifier, {
              clean: study.clean,
              statsData: study.statsData,
              guardData: study.guardData,
              stats,
              guardMaxDrop: study.guardMaxDrop,
              batchSize: study.batchSize,
              threads: options.threads,
              cacheDir: options.cacheDir,
              onProgress: say,
            }),
          };
        }),
      );
    // A study this worker cannot open is tried again on its next trial (the files may be fixed).
    studies.get(hash)!.catch(() => studies.delete(hash));
    return studies.get(hash)!;
  };

  const blocking = connection();
  const trial = async (d: TrialJobData): Promise<TrialOutcome> => {
    const { ctx, cases, study } = await studyOf(d.study);
    const caseKey = `${d.testset}\0${d.caseId}\0${d.k}`;
    if (!cases.has(caseKey)) {
      cases.set(caseKey, ctx.prepare(study.testsets[d.testset], d.caseId, d.k));
      if (cases.size > KEPT_CASES) cases.delete(cases.keys().next().value!);
    }
    const prepared = await cases.get(caseKey)!;
    return ctx.trial(prepared, d.target, d.method, d.method.grid[d.setting]);
  };
  const shard = async (d: ShardJobData): Promise<WireGramSum> => {
    const model = await modelOf(d.model);
    await checkFiles(d.files);
    const spec = parsePreprocess(d.preprocess, 'statistics job');
    const block = findBlock(listBlocks(model.proto.graph!), d.block);
    return toWire(await gramSum(model, block, d.items, spec, { threads: options.threads }));
  };

  const discover = async (d: DiscoverJobData): Promise<UnitPredictions> => {
    const model = await modelOf(d.model);
    await checkFiles(d.files);
    const spec = parsePreprocess(d.preprocess, 'discovery job');
    const [out] = await inProcessDiscovery.run(model, [d.unit], {
      spec,
      styles: [d.unit.style],
      transformation: d.transformation,
      batchSize: d.batchSize,
      threads: options.threads,
      cacheDir: options.cacheDir,
    });
    return out;
  };
  const processors: Record<JobName, (data: never) => Promise<unknown>> = {
    trial,
    'stats-shard': shard,
    'discover-cell': discover,
  };

  const worker = new Worker(
    QUEUE_NAME,
    async (job) => {
      const d = job.data;
      const what =
        job.name === 'trial'
          ? `${d.where} ${d.method.name} setting ${d.setting + 1}/${d.method.grid.length}`
          : job.name === 'discover-cell'
            ? `discovery ${d.unit.concept} x ${d.unit.style.name}`
            : `statistics of ${d.block}, ${d.items.length} images`;
      const t0 = performance.now();
      say(`${what}: started`);
      try {
        const out = await processors[job.name as JobName](job.data as never);
        say(`${what}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
        return out;
      } catch (e) {
        say(`${what}: ${(e as Error).message}`);
        // The same input fails the same way on every worker: no retry.
        if (isRuleditError(e)) throw new UnrecoverableError(e.message);
        throw e;
      }
    },
    {
      connection: blocking,
      concurrency: options.concurrency ?? 1,
      lockDuration: options.lockMs ?? 30_000,
      stalledInterval: options.lockMs ?? 30_000,
      maxStalledCount: 2,
    },
  );
  worker.on('error', (e) => say(`queue: ${e.message}`));
  await worker.waitUntilReady();
  return {
    async close() {
      await worker.close();
      for (const s of studies.values()) await s.then((x) => x.ctx.release()).catch(() => {});
      redis.disconnect();
      blocking.disconnect();
    },
  };
}
