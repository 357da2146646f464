import type { Block, Window2d } from '../onnx/blocks.js';

/**
 * Where a conv or pool window slides over a height x width map, by ONNX's rules: the output size
 * and the padding before the first row and column (auto_pad SAME_* splits it, VALID has none;
 * `ceil` is MaxPool's ceil_mode).
 */
export function placement(
  w: Window2d,
  height: number,
  width: number,
  ceil = false,
): { outH: number; outW: number; top: number; left: number } {
  const [kh, kw] = w.kernel;
  const [sh, sw] = w.strides;
  const [dh, dw] = w.dilations;
  const round = ceil ? Math.ceil : Math.floor;
  if (w.autoPad.startsWith('SAME')) {
    const [outH, outW] = [Math.ceil(height / sh), Math.ceil(width / sw)];
    const th = Math.max(0, (outH - 1) * sh + (kh - 1) * dh + 1 - height);
    const tw = Math.max(0, (outW - 1) * sw + (kw - 1) * dw + 1 - width);
    const upper = w.autoPad === 'SAME_UPPER';
    return {
      outH,
      outW,
      top: upper ? Math.floor(th / 2) : Math.ceil(th / 2),
      left: upper ? Math.floor(tw / 2) : Math.ceil(tw / 2),
    };
  }
  const [pt, pl, pb, pr] = w.autoPad === 'VALID' ? [0, 0, 0, 0] : w.pads;
  return {
    outH: round((height + pt + pb - dh * (kh - 1) - 1) / sh) + 1,
    outW: round((width + pl + pr - dw * (kw - 1) - 1) / sw) + 1,
    top: pt,
    left: pl,
  };
}

/**
 * im2col: the inputs each output position of the block's linear op sees. For a conv, row p holds
 * the C x kh x kw window under output position p (zeros in the padding), so the conv becomes a
 * matrix product; for a dense layer, each position's key (one, or one per token) is its row.
 * `map` is C x H x W (channel-major); returns positions x (C*kh*kw), row-major.
 */
export function unfold(
  block: Block,
  map: Float64Array,
  channels: number,
  height: number,
  width: number,
): { rows: Float64Array; positions: number; features: number; outH: number; outW: number } {
  if (!block.conv) {
    // A dense layer on one key, or on a map of token keys: each position's channels are its row.
    const positions = height * width;
    const rows = new Float64Array(map.length);
    for (let p = 0; p < positions; p++)
      for (let c = 0; c < channels; c++) rows[p * channels + c] = map[c * positions + p];
    return { rows, positions, features: channels, outH: height, outW: width };
  }
  const [kh, kw] = block.conv.kernel;
  const [sh, sw] = block.conv.strides;
  const [dh, dw] = block.conv.dilations;
  const { outH, outW, top: pt, left: pl } = placement(block.conv, height, width);
  const features = channels * kh * kw;
  const positions = outH * outW;
  const rows = new Float64Array(positions * features);
  for (let y = 0; y < outH; y++)
    for (let x = 0; x < outW; x++) {
      const row = (y * outW + x) * features;
      for (let c = 0; c < channels; c++)
        for (let u = 0; u < kh; u++) {
          const yy = y * sh - pt + u * dh;
          if (yy < 0 || yy >= height) continue;
          for (let v = 0; v < kw; v++) {
            const xx = x * sw - pl + v * dw;
            if (xx < 0 || xx >= width) continue;
            rows[row + (c * kh + u) * kw + v] = map[(c * height + yy) * width + xx];
          }
        }
    }
  return { rows, positions, features, outH, outW };
}
