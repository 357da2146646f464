import type { Block } from '../onnx/blocks.js';
import { placement } from './unfold.js';

/**
 * The value's positions over the pre-activation's: value position q is the max over pre-activation
 * positions members[starts[q] .. starts[q + 1]). One each without a MaxPool (the identity), the
 * pool's window with one (docs/method.md section 4).
 */
export interface Windows {
  starts: Int32Array;
  members: Int32Array;
}

export function identityWindows(positions: number): Windows {
  return {
    starts: Int32Array.from({ length: positions + 1 }, (_, q) => q),
    members: Int32Array.from({ length: positions }, (_, p) => p),
  };
}

/** The windows of a block's MaxPool over a height x width pre-activation map (padding left out). */
export function poolWindows(
  pool: NonNullable<Block['pool']>,
  height: number,
  width: number,
): Windows & { outH: number; outW: number } {
  const { outH, outW, top, left } = placement(pool, height, width, pool.ceil);
  const [kh, kw] = pool.kernel;
  const [sh, sw] = pool.strides;
  const [dh, dw] = pool.dilations;
  const starts = new Int32Array(outH * outW + 1);
  const members: number[] = [];
  for (let y = 0; y < outH; y++)
    for (let x = 0; x < outW; x++) {
      for (let u = 0; u < kh; u++) {
        const yy = y * sh - top + u * dh;
        if (yy < 0 || yy >= height) continue;
        for (let v = 0; v < kw; v++) {
          const xx = x * sw - left + v * dw;
          if (xx >= 0 && xx < width) members.push(yy * width + xx);
        }
      }
      starts[y * outW + x + 1] = members.length;
    }
  return { starts, members: Int32Array.from(members), outH, outW };
}
