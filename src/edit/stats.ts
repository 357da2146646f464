import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { batches } from '../data/batches.js';
import type { DatasetItem } from '../data/dataset.js';
import { batchDims, type PreprocessSpec } from '../data/preprocess.js';
import { isRuleditError, RuleditError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { cacheDir } from '../io/cache.js';
import { float64Bytes, float64Of } from '../io/float64.js';
import type { Block } from '../onnx/blocks.js';
import { GRAM_OUTPUT, withGram } from '../onnx/gram.js';
import { modelFromProto, type OnnxModel } from '../onnx/model.js';
import { tensorShapes } from '../runtime/capture.js';
import { Runner } from '../runtime/session.js';
import { sha256 } from '../io/digest.js';

/** Second moment of a block's keys over a reference data set (docs/method.md section 2). */
export interface KeyStats {
  block: string;
  /** Key dimension (C_in). */
  dim: number;
  /** C = mean over images and positions of k k^T, row-major dim x dim, float64. */
  C: Float64Array;
  /** Positions averaged over (images x key positions). */
  count: number;
  images: number;
  /** Cache key the statistics were stored under. */
  key: string;
}

export interface StatsOptions {
  batchSize?: number;
  threads?: number;
  /** Folder of the on-disk cache; default $RULEDIT_CACHE, else ~/.cache/ruledit. */
  cacheDir?: string;
  /** Ignore (and overwrite) a cached result. */
  refresh?: boolean;
  onBatch?: (n: number) => void;
  /** Told when a cached entry was damaged or altered and is recomputed. */
  onWarning?: (message: string) => void;
}

/** Statistics of keys wider than MAX_KEY_DIM are refused before any work. */
export function checkKeyDim(block: Block): void {
  const keyDim = block.weightShape[1];
  if (keyDim > MAX_KEY_DIM)
    throw new RuleditError(
      'keys-too-large',
      `'${block.name}' has ${keyDim}-dimensional keys: their statistics would be a ${keyDim}x${keyDim} float64 matrix (${((keyDim * keyDim * 8) / 2 ** 30).toFixed(1)} GB) to eigendecompose; ruledit edits blocks with keys of at most ${MAX_KEY_DIM} dimensions (a VGG classifier's first Gemm has 25088: pick a convolution)`,
    );
}

/** The largest key dimension whose statistics ruledit computes: 4096^2 float64 is 128 MB. */
export const MAX_KEY_DIM = 4096;

/**
 * C for a block's keys, streamed through ONNX Runtime (the Gram matrix of each batch is computed
 * inside the session) and accumulated in float64 across batches. Cached on disk, keyed by model
 * content, block, data set (paths, sizes, times) and preprocessing.
 */
export async function keyStatistics(
  model: OnnxModel,
  block: Block,
  items: DatasetItem[],
  spec: PreprocessSpec,
  options: StatsOptions = {},
): Promise<KeyStats> {
  checkKeyDim(block);
  const key = await statsKey(model, block, items, spec);
  const cached = await cachedStatistics(key, options);
  if (cached) return cached;
  const sum = await gramSum(model, block, items, spec, options);
  return finishStatistics(model, block, spec, key, sum, options);
}

/** Sum over images and positions of k k^T for some images: a shard of the statistics. */
export interface GramSum {
  dim: number;
  /** Row-major dim x dim, float64. */
  sum: Float64Array;
  images: number;
}

/**
 * The Gram sum of a block's keys over images, in float64: batch by batch within each shard of
 * STATS_SHARD images, then shard after shard. A distributed pass (queue/statistics.ts) computes
 * one shard per job and adds them in the same order (`addGramSums`): the same bits.
 */
export async function gramSum(
  model: OnnxModel,
  block: Block,
  items: DatasetItem[],
  spec: PreprocessSpec,
  options: StatsOptions = {},
): Promise<GramSum> {
  if (!items.length)
    throw new RuleditError('bad-dataset', 'no images to compute key statistics from');
  const layout = block.op === 'Conv' ? 'channels-first' : 'channels-last';
  const gramModel = modelFromProto(withGram(model.proto, block.key, layout, block.weightShape[1]));
  const runner = await Runner.create(gramModel, { taps: [GRAM_OUTPUT], threads: options.threads });
  const parts: GramSum[] = [];
  try {
    for (const shard of statsShards(items)) {
      let sum: Float64Array | undefined;
      let dim = 0;
      for await (const batch of batches(shard, spec, { batchSize: options.batchSize ?? 32 })) {
        const out = await runner.run(batch.data, batch.dims);
        const gram = out.taps[GRAM_OUTPUT];
        dim = gram.dims[0];
        sum ??= new Float64Array(dim * dim);
        for (let i = 0; i < sum.length; i++) sum[i] += gram.data[i];
        options.onBatch?.(batch.items.length);
      }
      parts.push({ dim, sum: sum!, images: shard.length });
    }
  } finally {
    await runner.release();
  }
  return addGramSums(parts);
}

/** Images per shard of the statistics pass: the unit of a distributed pass. */
export const STATS_SHARD = 256;

export function statsShards<T>(items: T[]): T[][] {
  return Array.from({ length: Math.ceil(items.length / STATS_SHARD) }, (_, k) =>
    items.slice(k * STATS_SHARD, (k + 1) * STATS_SHARD),
  );
}

/** Shards' sums added in order, from zero: what `gramSum` does with them. */
export function addGramSums(parts: GramSum[]): GramSum {
  const { dim } = parts[0];
  const sum = new Float64Array(dim * dim);
  for (const p of parts) for (let i = 0; i < sum.length; i++) sum[i] += p.sum[i];
  return { dim, sum, images: parts.reduce((a, p) => a + p.images, 0) };
}

/** C = the Gram sum over its positions, checked finite and cached under `key`. */
export async function finishStatistics(
  model: OnnxModel,
  block: Block,
  spec: PreprocessSpec,
  key: string,
  { dim, sum, images }: GramSum,
  options: StatsOptions = {},
): Promise<KeyStats> {
  const perImage = await positionsPerImage(model, block, spec);
  const count = images * perImage;
  const C = new Float64Array(sum.length);
  for (let i = 0; i < C.length; i++) {
    C[i] = sum[i] / count;
    if (!Number.isFinite(C[i])) {
      throw new RuleditError(
        'not-finite',
        `key statistics of '${block.name}' contain NaN or Inf: the model produces non-finite activations on this data`,
      );
    }
  }
  const stats: KeyStats = { block: block.name, dim, C, count, images, key };
  const bytes = float64Bytes(C);
  const entry = { ...stats, C: bytes.toString('base64'), sha256: sha256(bytes) };
  // The cache saves time, it is not needed: a folder that cannot be written is only a warning.
  await writeFileAtomic(statsFile(key, options), JSON.stringify(entry), {
    force: true,
    mkdir: true,
  }).catch((e) => {
    if (!isRuleditError(e) || e.code !== 'cannot-write') throw e;
    options.onWarning?.(`${e.message}; the statistics are not cached`);
  });
  return stats;
}

/** A cached entry for `key`, or undefined (absent, or damaged: then a warning, and recomputed). */
export async function cachedStatistics(
  key: string,
  options: StatsOptions = {},
): Promise<KeyStats | undefined> {
  const file = statsFile(key, options);
  if (options.refresh || !existsSync(file)) return undefined;
  const cached = await readCached(file, key);
  if (typeof cached === 'object') return cached;
  options.onWarning?.(`the cached key statistics ${file} ${cached}: recomputing them`);
  return undefined;
}

const statsFile = (key: string, options: StatsOptions) =>
  join(cacheDir(options.cacheDir), 'stats', `${key}.json`);

async function positionsPerImage(
  model: OnnxModel,
  block: Block,
  spec: PreprocessSpec,
): Promise<number> {
  // Everything but the batch and the channels: a conv's H x W, a token layer's T, a dense 1.
  const shape = (await tensorShapes(model, [block.key], batchDims(spec, 1)))[block.key];
  return shape.slice(1).reduce((a, b) => a * b, 1) / block.weightShape[1];
}

/** Cache key of a block's statistics: model content, block, data set (paths, sizes, times), preprocessing. */
export async function statsKey(
  model: OnnxModel,
  block: Block,
  items: DatasetItem[],
  spec: PreprocessSpec,
): Promise<string> {
  const h = createHash('sha256');
  h.update(`v1\0${model.hash}\0${block.name}\0${block.key}\0${JSON.stringify(spec)}\0`);
  for (const item of items) {
    const s = await stat(item.file).catch(() => undefined);
    h.update(`${item.file}\0${s?.size}\0${s?.mtimeMs}\0`);
  }
  return h.digest('hex').slice(0, 32);
}

/**
 * A cache entry, only if it is the one written for this key: its checksum matches, and C is a
 * dim x dim matrix of finite numbers, symmetric with a non-negative diagonal (a second moment).
 * Otherwise, why not (the caller recomputes).
 */
async function readCached(file: string, key: string): Promise<KeyStats | string> {
  let json;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch {
    return 'cannot be read';
  }
  if (json?.key !== key || typeof json.C !== 'string') return 'belongs to another entry';
  const bytes = Buffer.from(json.C, 'base64');
  if (json.sha256 !== sha256(bytes)) return 'does not match its checksum (damaged or edited)';
  const dim = json.dim;
  if (!Number.isInteger(dim) || dim < 1 || bytes.length !== 8 * dim * dim)
    return 'has the wrong size';
  const C = float64Of(bytes);
  for (let i = 0; i < dim; i++) {
    if (!(C[i * dim + i] >= 0)) return 'is not a second moment (negative or NaN diagonal)';
    for (let j = 0; j < i; j++) {
      const [a, b] = [C[i * dim + j], C[j * dim + i]];
      if (!Number.isFinite(a) || Math.abs(a - b) > 1e-9 * (Math.abs(a) + Math.abs(b)))
        return 'is not a second moment (not symmetric or not finite)';
    }
  }
  return { block: json.block, dim, C, count: json.count, images: json.images, key };
}
