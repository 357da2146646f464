import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { batches } from '../data/batches.js';
import type { DatasetItem } from '../data/dataset.js';
import { batchDims, type PreprocessSpec } from '../data/preprocess.js';
import { RuleditError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { cacheDir } from '../io/cache.js';
import type { Block } from '../onnx/blocks.js';
import { GRAM_OUTPUT, withGram } from '../onnx/gram.js';
import { modelFromProto, type OnnxModel } from '../onnx/model.js';
import { tensorShapes } from '../runtime/capture.js';
import { Runner } from '../runtime/session.js';

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
}

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
  const key = await statsKey(model, block, items, spec);
  const file = join(cacheDir(options.cacheDir), 'stats', `${key}.json`);
  if (!options.refresh) {
    const cached = await readCached(file, key);
    if (cached) return cached;
  }
  const spatial = block.op === 'Conv';
  const gramModel = modelFromProto(withGram(model.proto, block.key, spatial));
  const runner = await Runner.create(gramModel, { taps: [GRAM_OUTPUT], threads: options.threads });
  let C: Float64Array | undefined;
  let dim = 0;
  let count = 0;
  let images = 0;
  try {
    for await (const batch of batches(items, spec, { batchSize: options.batchSize ?? 32 })) {
      const out = await runner.run(batch.data, batch.dims);
      const gram = out.taps[GRAM_OUTPUT];
      dim = gram.dims[0];
      C ??= new Float64Array(dim * dim);
      for (let i = 0; i < C.length; i++) C[i] += gram.data[i];
      images += batch.items.length;
      options.onBatch?.(batch.items.length);
    }
  } finally {
    await runner.release();
  }
  if (!C) throw new RuleditError('bad-dataset', 'no images to compute key statistics from');
  const perImage = spatial ? await positionsPerImage(model, block, spec) : 1;
  count = images * perImage;
  for (let i = 0; i < C.length; i++) {
    C[i] /= count;
    if (!Number.isFinite(C[i])) {
      throw new RuleditError(
        'not-finite',
        `key statistics of '${block.name}' contain NaN or Inf: the model produces non-finite activations on this data`,
      );
    }
  }
  const stats: KeyStats = { block: block.name, dim, C, count, images, key };
  await writeFileAtomic(
    file,
    JSON.stringify({ ...stats, C: Buffer.from(C.buffer).toString('base64') }),
    { force: true, mkdir: true },
  );
  return stats;
}

async function positionsPerImage(
  model: OnnxModel,
  block: Block,
  spec: PreprocessSpec,
): Promise<number> {
  const shape = (await tensorShapes(model, [block.key], batchDims(spec, 1)))[block.key];
  return shape.slice(2).reduce((a, b) => a * b, 1);
}

async function statsKey(
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

async function readCached(file: string, key: string): Promise<KeyStats | undefined> {
  try {
    const json = JSON.parse(await readFile(file, 'utf8'));
    if (json.key !== key) return undefined;
    const bytes = Buffer.from(json.C, 'base64');
    const C = new Float64Array(
      bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length),
    );
    return { ...json, C };
  } catch {
    return undefined; // a missing or damaged cache entry is recomputed
  }
}
