import * as tf from '@tensorflow/tfjs-core';
import { RuleditError } from '../../errors.js';

export type Pad = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
export type Pair = number | [number, number];

/**
 * Kernels are handed TensorInfos; wrapping them lets the shims be written with ordinary ops.
 * When called from an op the inputs already are Tensors, and re-wrapping would only add refs.
 */
export function asTensor(info: tf.TensorInfo | undefined): tf.Tensor {
  if (info == null) throw new Error('gradient shim called without one of its inputs');
  return (info as Partial<tf.Tensor>).rank != null
    ? (info as tf.Tensor)
    : tf.engine().makeTensorFromTensorInfo(info);
}

export function pair(v: Pair | undefined): [number, number] {
  if (v == null) return [1, 1];
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

export function requireNHWC(kernel: string, dataFormat: string | undefined): void {
  if (dataFormat != null && dataFormat !== 'NHWC') {
    throw new RuleditError(
      'unsupported-layout',
      `${kernel} on the wasm backend supports only NHWC tensors (got ${dataFormat}); ` +
        'transpose to NHWC or use the cpu backend',
    );
  }
}

/**
 * Pads (positive amounts) or crops (negative amounts) the two spatial axes, `first` being the
 * height axis. Cropping arises when an explicit padding exceeds what the kernel window reaches.
 */
export function padOrCrop(
  t: tf.Tensor,
  first: number,
  [top, bottom]: [number, number],
  [left, right]: [number, number],
): tf.Tensor {
  const rank = t.rank;
  const amounts: [number, number][] = Array.from({ length: rank }, () => [0, 0]);
  amounts[first] = [Math.max(0, top), Math.max(0, bottom)];
  amounts[first + 1] = [Math.max(0, left), Math.max(0, right)];
  let out = amounts.some(([a, b]) => a > 0 || b > 0) ? tf.pad(t, amounts) : t;
  if (top < 0 || bottom < 0 || left < 0 || right < 0) {
    const begin = new Array<number>(rank).fill(0);
    const size = out.shape.slice();
    begin[first] = Math.max(0, -top);
    begin[first + 1] = Math.max(0, -left);
    size[first] -= begin[first] + Math.max(0, -bottom);
    size[first + 1] -= begin[first + 1] + Math.max(0, -right);
    out = tf.slice(out, begin, size);
  }
  return out;
}

/**
 * The window of input rows/cols that a kernel offset touches: `count` positions starting at
 * `start`, `stride` apart, on the two spatial axes (`first` is the height axis).
 */
export function window(
  t: tf.Tensor,
  first: number,
  start: [number, number],
  count: [number, number],
  stride: [number, number],
): tf.Tensor {
  const rank = t.rank;
  const begin = new Array<number>(rank).fill(0);
  begin[first] = start[0];
  begin[first + 1] = start[1];
  if (stride[0] === 1 && stride[1] === 1) {
    const size = t.shape.slice();
    size[first] = count[0];
    size[first + 1] = count[1];
    return tf.slice(t, begin, size);
  }
  const end = t.shape.slice();
  const strides = new Array<number>(rank).fill(1);
  end[first] = start[0] + (count[0] - 1) * stride[0] + 1;
  end[first + 1] = start[1] + (count[1] - 1) * stride[1] + 1;
  strides[first] = stride[0];
  strides[first + 1] = stride[1];
  return tf.stridedSlice(t, begin, end, strides);
}

/**
 * Spreads an output gradient back onto the stride grid (stride-1 zeros after each element), so
 * that a strided convolution's input gradient becomes a stride-1 correlation. The trailing zeros
 * after the last element are kept; callers account for them in their padding.
 */
export function zeroInterleave(dy: tf.Tensor4D, [sh, sw]: [number, number]): tf.Tensor4D {
  if (sh === 1 && sw === 1) return dy;
  const [n, h, w, c] = dy.shape;
  const spread = tf.pad(tf.reshape(dy, [n, h, 1, w, 1, c]), [
    [0, 0],
    [0, 0],
    [0, sh - 1],
    [0, 0],
    [0, sw - 1],
    [0, 0],
  ]);
  return tf.reshape(spread, [n, h * sh, w * sw, c]);
}

/**
 * Padding that turns a (zero-interleaved) output gradient of length `spread` into a valid,
 * stride-1 correlation with the flipped kernel producing exactly `inLen` input positions.
 */
export function fullCorrelationPad(
  inLen: number,
  spread: number,
  padBefore: number,
  effectiveKernel: number,
): [number, number] {
  const before = effectiveKernel - 1 - padBefore;
  return [before, inLen - spread + padBefore];
}

/**
 * An input gradient is a stride-1 correlation: the output gradient spread onto the stride grid and
 * padded so that a 'valid' correlation with the flipped filter gives exactly the input's size.
 */
export function spreadForInputGrad(dy: tf.Tensor4D, info: tf.backend_util.Conv2DInfo): tf.Tensor4D {
  const spread = zeroInterleave(dy, [info.strideHeight, info.strideWidth]);
  return padOrCrop(
    spread,
    1,
    fullCorrelationPad(
      info.inHeight,
      spread.shape[1],
      info.padInfo.top,
      info.effectiveFilterHeight,
    ),
    fullCorrelationPad(info.inWidth, spread.shape[2], info.padInfo.left, info.effectiveFilterWidth),
  ) as tf.Tensor4D;
}
