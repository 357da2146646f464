import { sha256 } from '../io/digest.js';
import { resolve } from 'node:path';
import type { StyleTransform } from '../concepts/transformed.js';
import { DEFAULT_TRANSFORM } from '../concepts/testset.js';
import { specToJson } from '../data/preprocess.js';
import { RuleditError } from '../errors.js';
import type { DiscoveryExecutor, DiscoveryUnit, UnitPredictions } from '../eval/discover.js';
import { connectQueue } from './connection.js';
import type { QueueOptions } from './coordinator.js';
import { runJobs } from './jobs.js';
import { digests } from './study.js';

/** One (concept, style) of a rule discovery, with what a worker needs to check and run it. */
export interface DiscoverJobData {
  model: { path: string; hash: string };
  preprocess: Record<string, unknown>;
  transformation: StyleTransform;
  unit: DiscoveryUnit;
  batchSize?: number;
  files: Record<string, string>;
}

/**
 * Rule discovery as map-reduce on the queue: each (concept, style) unit is a job that
 * transforms and predicts its images on a worker; the rows are assembled here, as in-process.
 */
export async function queueDiscovery(
  url: string,
  opts: QueueOptions & { say?: (message: string) => void } = {},
): Promise<DiscoveryExecutor> {
  const connection = await connectQueue(url);
  const say = opts.say ?? (() => {});
  return {
    async run(model, units, options) {
      if (!model.path)
        throw new RuleditError(
          'bad-option',
          'a queued discovery needs a model loaded from a file the workers can read',
        );
      const t = options.transformation ?? DEFAULT_TRANSFORM;
      const transformation = t.kind === 'stylize' ? { ...t, model: resolve(t.model) } : t;
      const jobs = await Promise.all(
        units.map(async (u) => {
          const unit = {
            ...u,
            images: u.images.map((i) => ({ file: resolve(i.file), mask: resolve(i.mask) })),
            style: { ...u.style, images: u.style.images.map((f) => resolve(f)) },
          };
          const files = await digests([
            ...unit.images.flatMap((i) => [i.file, i.mask]),
            ...unit.style.images,
            ...(transformation.kind === 'stylize' ? [transformation.model] : []),
          ]);
          const data: DiscoverJobData = {
            model: { path: model.path!, hash: model.hash },
            preprocess: specToJson(options.spec),
            transformation,
            unit,
            ...(options.batchSize ? { batchSize: options.batchSize } : {}),
            files,
          };
          const id = sha256(JSON.stringify(data)).slice(0, 24);
          return {
            id: `discover.${id}`,
            name: 'discover-cell' as const,
            what: `${u.concept} x ${u.style.name}`,
            data,
          };
        }),
      );
      const results = new Map<string, UnitPredictions>();
      await runJobs<DiscoverJobData, UnitPredictions>(connection, jobs, {
        ...opts,
        url,
        say,
        unit: '(concept, style) units',
        done: async (id, r) => void results.set(id, r),
      });
      return jobs.map((j) => results.get(j.id)!);
    },
  };
}
