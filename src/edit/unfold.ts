import type { Block } from '../onnx/blocks.js';

/**
 * im2col: the inputs each output position of the block's linear op sees. For a conv, row p holds
 * the C x kh x kw window under output position p (zeros in the padding), so the conv becomes a
 * matrix product; for a dense layer, the single row is the key itself.
 * `map` is C x H x W (channel-major); returns positions x (C*kh*kw), row-major.
 */
export function unfold(
  block: Block,
  map: Float64Array,
  channels: number,
  height: number,
  width: number,
): { rows: Float64Array; positions: number; features: number; outH: number; outW: number } {
  if (!block.conv) return { rows: map, positions: 1, features: channels, outH: 1, outW: 1 };
  const [kh, kw] = block.conv.kernel;
  const [sh, sw] = block.conv.strides;
  const [dh, dw] = block.conv.dilations;
  let [pt, pl, pb, pr] = block.conv.pads;
  let outH = Math.floor((height + pt + pb - dh * (kh - 1) - 1) / sh) + 1;
  let outW = Math.floor((width + pl + pr - dw * (kw - 1) - 1) / sw) + 1;
  if (block.conv.autoPad.startsWith('SAME')) {
    outH = Math.ceil(height / sh);
    outW = Math.ceil(width / sw);
    const th = Math.max(0, (outH - 1) * sh + (kh - 1) * dh + 1 - height);
    const tw = Math.max(0, (outW - 1) * sw + (kw - 1) * dw + 1 - width);
    pt = block.conv.autoPad === 'SAME_UPPER' ? Math.floor(th / 2) : Math.ceil(th / 2);
    pl = block.conv.autoPad === 'SAME_UPPER' ? Math.floor(tw / 2) : Math.ceil(tw / 2);
  } else if (block.conv.autoPad === 'VALID') {
    [pt, pl] = [0, 0];
    outH = Math.floor((height - dh * (kh - 1) - 1) / sh) + 1;
    outW = Math.floor((width - dw * (kw - 1) - 1) / sw) + 1;
  }
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
