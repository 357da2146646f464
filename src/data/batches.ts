import { isRuleditError } from '../errors.js';
import type { DatasetItem } from './dataset.js';
import { decodeImage } from './image.js';
import { batchDims, type PreprocessSpec } from './preprocess.js';

/** A batch of preprocessed images; `items` says which images they are. */
export interface Batch<T = DatasetItem> {
  items: T[];
  data: Float32Array;
  /** [n, 3, h, w] (NCHW) or [n, h, w, 3] (NHWC). */
  dims: number[];
}

export interface BatchOptions {
  batchSize: number;
  /** Batches decoded ahead of the consumer (bounded, so memory stays flat). */
  prefetch?: number;
  /** Given: an image that cannot be decoded is dropped and reported here, else it throws. */
  onSkip?: (warning: string) => void;
  /** A cache folder for the decoded pixels of data sets read again and again (pixel-cache.ts). */
  pixelCache?: string;
}

/**
 * Decoded batches in order. Decoding of the next batches runs while the consumer works on the
 * current one (sharp decodes on libuv's thread pool), so inference never waits on JPEG decoding.
 */
export async function* batches<T extends { file: string }>(
  items: T[],
  spec: PreprocessSpec,
  options: BatchOptions,
): AsyncGenerator<Batch<T>> {
  const { batchSize, prefetch = 2, onSkip, pixelCache } = options;
  // The CLI validates --batch; a bad value here is a caller's bug (0 would loop forever).
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new RangeError(`batchSize must be a whole number >= 1, got ${batchSize}`);
  if (!Number.isInteger(prefetch) || prefetch < 0)
    throw new RangeError(`prefetch must be a whole number >= 0, got ${prefetch}`);
  const decode = async (chunk: T[]): Promise<Batch<T>> => {
    const results = await Promise.allSettled(
      chunk.map((item) => decodeImage(item.file, spec, { pixelCache })),
    );
    const kept: T[] = [];
    const tensors: Float32Array[] = [];
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') [kept.push(chunk[i]), tensors.push(r.value)];
      // Only the user's files are skipped ('not-found', 'bad-image'); a bug still surfaces.
      else if (onSkip && isRuleditError(r.reason)) onSkip(`skipped an image: ${r.reason.message}`);
      else throw r.reason;
    });
    return { items: kept, ...stackImages(tensors, spec) };
  };

  const pending: Promise<Batch<T>>[] = [];
  let next = 0;
  const fill = (limit: number) => {
    while (pending.length < limit && next < items.length) {
      const p = decode(items.slice(next, next + batchSize));
      // An abandoned generator leaves decodes in flight: their failures must not go unhandled.
      p.catch(() => {});
      pending.push(p);
      next += batchSize;
    }
  };
  for (;;) {
    fill(1);
    const current = pending.shift();
    if (!current) return;
    // While the consumer works on this batch, the next `prefetch` ones decode.
    fill(prefetch);
    const batch = await current;
    if (batch.items.length) yield batch;
  }
}

/** Preprocessed images (3*h*w floats each) as one batch tensor in the spec's layout. */
export function stackImages(
  images: Float32Array[],
  spec: PreprocessSpec,
): { data: Float32Array; dims: number[] } {
  const per = 3 * spec.size[0] * spec.size[1];
  const data = new Float32Array(images.length * per);
  images.forEach((x, i) => data.set(x, i * per));
  return { data, dims: batchDims(spec, images.length) };
}
