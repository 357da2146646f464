import type { Batch } from '../data/batches.js';
import type { OnnxModel } from '../onnx/model.js';
import { Runner, type Tapped } from './session.js';

export interface Captured<T = unknown> {
  items: T[];
  logits: Tapped;
  taps: Record<string, Tapped>;
}

/**
 * Run the model over a stream of batches, yielding logits and the tapped tensors batch by batch,
 * so memory stays flat whatever the data set size (nethook-style: name the tensors to read).
 */
export async function* capture<T>(
  model: OnnxModel,
  taps: string[],
  batches: AsyncIterable<Batch<T>>,
  options: { threads?: number } = {},
): AsyncGenerator<Captured<T>> {
  const runner = await Runner.create(model, { taps, threads: options.threads });
  try {
    for await (const batch of batches) {
      const out = await runner.run(batch.data, batch.dims);
      yield { items: batch.items, ...out };
    }
  } finally {
    await runner.release();
  }
}

/** Shapes of named tensors for one input shape, read off a single run on zeros. */
export async function tensorShapes(
  model: OnnxModel,
  tensors: string[],
  inputDims: number[],
): Promise<Record<string, number[]>> {
  const runner = await Runner.create(model, { taps: tensors, threads: 1 });
  try {
    const size = inputDims.reduce((a, b) => a * b, 1);
    const out = await runner.run(new Float32Array(size), inputDims);
    return Object.fromEntries(tensors.map((t) => [t, out.taps[t].dims]));
  } finally {
    await runner.release();
  }
}
