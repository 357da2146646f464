import * as tf from '@tensorflow/tfjs-core';
import type { KernelFunc, NamedAttrMap } from '@tensorflow/tfjs-core';
import {
  asTensor,
  spreadForInputGrad,
  padOrCrop,
  pair,
  requireNHWC,
  window,
  type Pad,
  type Pair,
} from './common.js';

interface FilterAttrs {
  strides: Pair;
  pad: Pad;
  dataFormat?: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
  /** tfjs-core's conv2d gradient never sets it (it refuses dilated convs); callers may. */
  dilations?: Pair;
}

/**
 * dW = unfold(x)^T . dy. The input is moved to channels-first once, so every kernel offset's
 * slice concatenates along the outer axis straight into the [kh*kw*Cin, N*outH*outW] matrix:
 * no transpose of the (kh*kw times larger) unfolded matrix, and no transposed MatMul, which
 * runs ~15x slower on wasm.
 */
export const conv2DBackpropFilter: KernelFunc = ({ inputs, attrs }) => {
  const a = attrs as unknown as FilterAttrs & NamedAttrMap;
  requireNHWC('Conv2DBackpropFilter', a.dataFormat);
  const x = asTensor(inputs.x) as tf.Tensor4D;
  const dy = asTensor(inputs.dy) as tf.Tensor4D;
  const info = tf.backend_util.computeConv2DInfo(
    x.shape,
    a.filterShape,
    a.strides,
    pair(a.dilations),
    a.pad,
    a.dimRoundingMode,
    false,
    'channelsLast',
  );
  return tf.tidy(() => {
    const [kh, kw, cin, cout] = a.filterShape;
    const { outHeight: oh, outWidth: ow, batchSize: n } = info;
    const m = n * oh * ow;
    const xT = tf.transpose(x, [3, 0, 1, 2]);
    const xp = padOrCrop(xT, 2, ...spatialPad(info, x.shape));
    const cols: tf.Tensor[] = [];
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const start: [number, number] = [i * info.dilationHeight, j * info.dilationWidth];
        cols.push(window(xp, 2, start, [oh, ow], [info.strideHeight, info.strideWidth]));
      }
    }
    const unfolded = tf.reshape(cols.length === 1 ? cols[0] : tf.concat(cols, 0), [
      kh * kw * cin,
      m,
    ]);
    const grad = tf.matMul(unfolded, tf.reshape(dy, [m, cout]));
    return tf.reshape(grad, [kh, kw, cin, cout]);
  });
};

/**
 * Pads so that every window the kernel reaches exists; with dimRoundingMode 'ceil' the last
 * window can hang past the declared padding (it only ever reads zeros there).
 */
export function spatialPad(
  info: tf.backend_util.Conv2DInfo,
  inShape: number[],
): [[number, number], [number, number]] {
  const { top, bottom, left, right } = info.padInfo;
  const needH = (info.outHeight - 1) * info.strideHeight + info.effectiveFilterHeight;
  const needW = (info.outWidth - 1) * info.strideWidth + info.effectiveFilterWidth;
  return [
    [top, Math.max(bottom, needH - top - inShape[1])],
    [left, Math.max(right, needW - left - inShape[2])],
  ];
}

interface InputAttrs {
  strides: Pair;
  pad: Pad;
  dataFormat?: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  inputShape: [number, number, number, number];
}

/**
 * dx = valid stride-1 correlation of the (zero-interleaved, padded) output gradient with the
 * kernel flipped spatially and its channel axes swapped, i.e. one call of wasm's fast forward
 * Conv2D instead of the built-in backprop loop.
 */
export const conv2DBackpropInputShim: KernelFunc = ({ inputs, attrs }) => {
  const a = attrs as unknown as InputAttrs & NamedAttrMap;
  requireNHWC('Conv2DBackpropInput', a.dataFormat);
  const dy = asTensor(inputs.dy) as tf.Tensor4D;
  const filter = asTensor(inputs.filter) as tf.Tensor4D;
  const info = tf.backend_util.computeConv2DInfo(
    a.inputShape,
    filter.shape,
    a.strides,
    1,
    a.pad,
    a.dimRoundingMode,
    false,
    'channelsLast',
  );
  return tf.tidy(() => {
    const padded = spreadForInputGrad(dy, info);
    const flipped = tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D;
    return tf.conv2d(padded, flipped, 1, 'valid');
  });
};
