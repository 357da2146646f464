import type { Redis } from 'ioredis';
import type { Classifier } from '../classifier.js';
import type { DatasetItem } from '../data/dataset.js';
import { specToJson } from '../data/preprocess.js';
import { float64Bytes, float64Of } from '../io/float64.js';
import { splitReference } from '../edit/guard.js';
import { pickBlock } from '../edit/layer.js';
import {
  addGramSums,
  cachedStatistics,
  checkKeyDim,
  finishStatistics,
  statsKey,
  statsShards,
  type GramSum,
  type KeyStats,
} from '../edit/stats.js';
import { RuleditError } from '../errors.js';
import { runJobs } from './jobs.js';
import { digests, KEEP_SECONDS, type Study } from './study.js';

/** A shard of a statistics pass: STATS_SHARD images of the reference set, with their hashes. */
export interface ShardJobData {
  model: { path: string; hash: string };
  preprocess: Record<string, unknown>;
  block: string;
  items: DatasetItem[];
  files: Record<string, string>;
}

/** A Gram sum as JSON carries it: float64 bytes in base64. */
export interface WireGramSum {
  dim: number;
  images: number;
  sum: string;
}

export const toWire = (g: GramSum): WireGramSum => ({
  dim: g.dim,
  images: g.images,
  sum: float64Bytes(g.sum).toString('base64'),
});

const fromBase64 = (text: string) => float64Of(Buffer.from(text, 'base64'));

export interface QueueStatsOptions {
  url: string;
  say: (message: string) => void;
  cacheDir?: string;
  /** Compute again even when this machine has them cached. */
  refresh?: boolean;
  attempts?: number;
  progressEvery?: number;
}

/**
 * Key statistics as map-reduce on the queue: one job per STATS_SHARD images, the shards' Gram
 * sums added in order, which is what the single-process pass does (the same bits, and the same
 * cache key: a later `edit` or `stats` here finds them cached).
 */
export async function queueStatistics(
  connection: () => Redis,
  classifier: Classifier,
  layer: string | undefined,
  items: DatasetItem[],
  opts: QueueStatsOptions,
): Promise<KeyStats> {
  const { model, spec } = classifier;
  const block = await pickBlock(model, spec, layer);
  checkKeyDim(block);
  const key = await statsKey(model, block, items, spec);
  const cached = await cachedStatistics(key, {
    cacheDir: opts.cacheDir,
    refresh: opts.refresh,
    onWarning: opts.say,
  });
  if (cached) return cached;
  if (!model.path)
    throw new RuleditError(
      'bad-option',
      'a queued pass needs a model loaded from a file the workers can read (loadClassifier)',
    );
  const shards = statsShards(items);
  const parts: GramSum[] = [];
  opts.say(
    `queue: key statistics of ${block.name} over ${items.length} images, ${shards.length} shard(s)`,
  );
  await runJobs<ShardJobData, WireGramSum>(
    connection,
    await Promise.all(
      shards.map(async (shard, k) => ({
        id: `stats.${key}.${k}`,
        name: 'stats-shard' as const,
        what: `statistics of ${block.name}, shard ${k + 1}/${shards.length}`,
        data: {
          model: { path: model.path!, hash: model.hash },
          preprocess: specToJson(spec),
          block: block.name,
          items: shard,
          files: await digests(shard.map((i) => i.file)),
        },
      })),
    ),
    {
      ...opts,
      unit: 'shards',
      done: async (id, r) => {
        parts[Number(id.split('.').at(-1))] = {
          dim: r.dim,
          images: r.images,
          sum: fromBase64(r.sum),
        };
      },
    },
  );
  return finishStatistics(model, block, spec, key, addGramSums(parts), {
    cacheDir: opts.cacheDir,
    onWarning: opts.say,
  });
}

const STATS_KEY = (key: string) => `ruledit:stats:${key}`;

/**
 * The statistics a study's rewrite trials need, one per layer, computed on the workers (or found
 * in this machine's cache) and put in Redis, so that no worker computes them again.
 */
export async function shareStatistics(
  connection: () => Redis,
  classifier: Classifier,
  study: Study,
  layers: (string | undefined)[],
  opts: QueueStatsOptions,
): Promise<string[]> {
  if (!study.statsData || !layers.length) return [];
  const items = splitReference(study.statsData).stats;
  const keys: string[] = [];
  const redis = connection();
  try {
    for (const layer of new Set(layers)) {
      const stats = await queueStatistics(connection, classifier, layer, items, opts);
      const { C, ...rest } = stats;
      await redis.set(
        STATS_KEY(stats.key),
        JSON.stringify({
          ...rest,
          C: float64Bytes(C).toString('base64'),
        }),
        'EX',
        KEEP_SECONDS,
      );
      keys.push(stats.key);
    }
  } finally {
    redis.disconnect();
  }
  return keys;
}

/** Statistics shared by a coordinator, as a worker reads them. */
export async function sharedStatistics(redis: Redis, keys: string[]): Promise<KeyStats[]> {
  return Promise.all(
    keys.map(async (key) => {
      const raw = await redis.get(STATS_KEY(key));
      if (!raw)
        throw new RuleditError(
          'no-study',
          `the key statistics ${key} are not in Redis any more: rerun the coordinator`,
        );
      const json = JSON.parse(raw);
      return { ...json, C: fromBase64(json.C) } as KeyStats;
    }),
  );
}
