import type { OnnxModel } from '../onnx/model.js';
import { top1Rows } from '../runtime/logits.js';
import { Runner } from '../runtime/session.js';

/** Interleaved 8-bit RGB -> the built-in model's input: NCHW planes, (p/255 - 0.5) / 0.5. */
export function sceneInput(rgb: Uint8Array, out: Float32Array, offset = 0): Float32Array {
  const plane = rgb.length / 3;
  for (let i = 0; i < plane; i++) {
    out[offset + i] = rgb[3 * i] / 127.5 - 1;
    out[offset + plane + i] = rgb[3 * i + 1] / 127.5 - 1;
    out[offset + 2 * plane + i] = rgb[3 * i + 2] / 127.5 - 1;
  }
  return out;
}

/**
 * Top-1 class of each image (interleaved RGB, size x size) under a scene model, run by ONNX
 * Runtime in batches straight from memory: the demo's scenes never touch the disk.
 */
export async function predictScenes(
  model: OnnxModel,
  images: Uint8Array[],
  size: number,
  options: { threads?: number; batch?: number } = {},
): Promise<number[]> {
  const runner = await Runner.create(model, { threads: options.threads });
  const batch = options.batch ?? 128;
  const per = 3 * size * size;
  const out: number[] = [];
  try {
    for (let i = 0; i < images.length; i += batch) {
      const n = Math.min(batch, images.length - i);
      const x = new Float32Array(n * per);
      for (let j = 0; j < n; j++) sceneInput(images[i + j], x, j * per);
      const { logits } = await runner.run(x, [n, 3, size, size]);
      out.push(...top1Rows(logits));
    }
  } finally {
    await runner.release();
  }
  return out;
}
