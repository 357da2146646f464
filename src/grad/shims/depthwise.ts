import * as tf from '@tensorflow/tfjs-core';
import type { KernelFunc, NamedAttrMap } from '@tensorflow/tfjs-core';
import { RuleditError } from '../../errors.js';
import {
  asTensor,
  spreadForInputGrad,
  padOrCrop,
  pair,
  window,
  type Pad,
  type Pair,
} from './common.js';
import { spatialPad } from './conv2d.js';

interface DepthwiseAttrs {
  strides: Pair;
  dilations?: Pair;
  pad: Pad;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

function requireMultiplierOne(kernel: string, filterShape: number[]): void {
  if (filterShape[3] !== 1) {
    throw new RuleditError(
      'unsupported-op',
      `${kernel} on the wasm backend supports only channel multiplier 1 (got ${filterShape[3]}); ` +
        'use the cpu backend for this model',
    );
  }
}

/**
 * dW[i,j,c] = sum over n,h,w of x_padded[n, h*s + i*d, w*s + j*d, c] * dy[n,h,w,c], which is
 * itself a depthwise correlation: of the padded input with dy as the filter (dilated by the
 * stride, stepping by the dilation), with the batch folded into the channels. That runs in
 * wasm's forward depthwise kernel, ~3x faster than per-offset slices and products.
 */
export const depthwiseBackpropFilter: KernelFunc = ({ inputs, attrs }) => {
  const a = attrs as unknown as DepthwiseAttrs & {
    filterShape: [number, number, number, number];
  } & NamedAttrMap;
  requireMultiplierOne('DepthwiseConv2dNativeBackpropFilter', a.filterShape);
  const x = asTensor(inputs.x) as tf.Tensor4D;
  const dy = asTensor(inputs.dy) as tf.Tensor4D;
  const info = tf.backend_util.computeConv2DInfo(
    x.shape,
    a.filterShape,
    a.strides,
    pair(a.dilations),
    a.pad,
    a.dimRoundingMode,
    true,
  );
  return tf.tidy(() => {
    const [kh, kw, c] = a.filterShape;
    const { outHeight: oh, outWidth: ow, batchSize: n } = info;
    const stride: [number, number] = [info.strideHeight, info.strideWidth];
    const dilation: [number, number] = [info.dilationHeight, info.dilationWidth];
    const xp = padOrCrop(x, 1, ...spatialPad(info, x.shape));
    const strided = stride[0] > 1 || stride[1] > 1;
    if (strided && (dilation[0] > 1 || dilation[1] > 1)) {
      return byOffsets(xp, dy, [kh, kw, c], [oh, ow], stride, dilation);
    }
    // Exactly the rows/cols some window reaches, so the correlation yields kh x kw outputs.
    const reach = [
      (kh - 1) * dilation[0] + (oh - 1) * stride[0] + 1,
      (kw - 1) * dilation[1] + (ow - 1) * stride[1] + 1,
    ];
    const input = tf.reshape(
      tf.transpose(tf.slice(xp, [0, 0, 0, 0], [n, reach[0], reach[1], c]), [1, 2, 0, 3]),
      [1, reach[0], reach[1], n * c],
    ) as tf.Tensor4D;
    const filter = tf.reshape(tf.transpose(dy, [1, 2, 0, 3]), [oh, ow, n * c, 1]) as tf.Tensor4D;
    const perImage = strided
      ? tf.depthwiseConv2d(input, filter, 1, 'valid', 'NHWC', stride)
      : tf.depthwiseConv2d(input, filter, dilation, 'valid');
    return tf.reshape(tf.sum(tf.reshape(perImage, [kh, kw, n, c]), 2), [kh, kw, c, 1]);
  });
};

/**
 * The direct form, for the one case tf.depthwiseConv2d refuses (stride and dilation both > 1).
 * Sums with a row of ones: wasm's MatMul beats its Sum over leading axes (which transposes).
 */
function byOffsets(
  xp: tf.Tensor,
  dy: tf.Tensor4D,
  [kh, kw, c]: number[],
  count: [number, number],
  stride: [number, number],
  dilation: [number, number],
): tf.Tensor {
  const m = dy.size / c;
  const ones = tf.ones([1, m]);
  const parts: tf.Tensor[] = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const xs = window(xp, 1, [i * dilation[0], j * dilation[1]], count, stride);
      parts.push(tf.matMul(ones, tf.reshape(tf.mul(xs, dy), [m, c])));
    }
  }
  return tf.reshape(tf.concat(parts, 0), [kh, kw, c, 1]);
}

/**
 * dx = valid stride-1 correlation of the (zero-interleaved, padded) output gradient with the
 * spatially flipped kernel, run by wasm's forward depthwise kernel.
 */
export const depthwiseBackpropInput: KernelFunc = ({ inputs, attrs }) => {
  const a = attrs as unknown as DepthwiseAttrs & {
    inputShape: [number, number, number, number];
  } & NamedAttrMap;
  const dy = asTensor(inputs.dy) as tf.Tensor4D;
  const filter = asTensor(inputs.filter) as tf.Tensor4D;
  requireMultiplierOne('DepthwiseConv2dNativeBackpropInput', filter.shape);
  const dilations = pair(a.dilations);
  const info = tf.backend_util.computeConv2DInfo(
    a.inputShape,
    filter.shape,
    a.strides,
    dilations,
    a.pad,
    a.dimRoundingMode,
    true,
  );
  return tf.tidy(() => {
    const padded = spreadForInputGrad(dy, info);
    const flipped = tf.reverse(filter, [0, 1]) as tf.Tensor4D;
    return tf.depthwiseConv2d(padded, flipped, 1, 'valid', 'NHWC', dilations);
  });
};
