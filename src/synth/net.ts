import type * as tfc from '@tensorflow/tfjs-core';
import { normals } from '../util/random.js';

type TF = typeof tfc;

/**
 * The built-in scene classifier: a small ResNet-style network. Two plain conv-BN-ReLU blocks
 * bring 64x64 down to 16x16, then a residual stage at 16x16, a strided conv to 8x8, a second
 * residual stage, global average pooling and a dense layer. Weights are plain arrays, so the
 * same numbers feed TF.js (training) and the ONNX export.
 */
export interface ConvParams {
  name: string;
  cin: number;
  cout: number;
  stride: number;
  /** [3, 3, cin, cout], TF.js layout. */
  w: Float32Array;
  gamma: Float32Array;
  beta: Float32Array;
  mean: Float32Array;
  variance: Float32Array;
}

export interface NetParams {
  convs: ConvParams[];
  fc: { w: Float32Array /* [features, classes] */; b: Float32Array };
  classes: number;
  /** Input side in pixels. */
  size: number;
}

export const BN_EPSILON = 1e-3;

/** [name, cin, cout, stride]; names ending in 'a'/'b' are the two convs of a residual block. */
const LAYOUT: [string, number, number, number][] = [
  ['stem', 3, 16, 2],
  ['conv1', 16, 32, 2],
  ['res1a', 32, 32, 1],
  ['res1b', 32, 32, 1],
  ['down', 32, 64, 2],
  ['res2a', 64, 64, 1],
  ['res2b', 64, 64, 1],
];

export function initParams(classes: number, size: number, seed: number): NetParams {
  let s = seed;
  const convs = LAYOUT.map(([name, cin, cout, stride]) => ({
    name,
    cin,
    cout,
    stride,
    // He initialization; the second conv of a residual branch starts small so each block starts
    // close to the identity.
    w: normals(9 * cin * cout, s++, Math.sqrt(2 / (9 * cin)) * (name.endsWith('b') ? 0.3 : 1)),
    gamma: new Float32Array(cout).fill(1),
    beta: new Float32Array(cout),
    mean: new Float32Array(cout),
    variance: new Float32Array(cout).fill(1),
  }));
  const features = convs[convs.length - 1].cout;
  return {
    convs,
    fc: {
      w: normals(features * classes, s++, Math.sqrt(1 / features)),
      b: new Float32Array(classes),
    },
    classes,
    size,
  };
}

/** The trainable tensors of a parameter set (BN running statistics are not trained). */
export interface NetVariables {
  conv: { w: tfc.Variable; gamma: tfc.Variable; beta: tfc.Variable }[];
  fcW: tfc.Variable;
  fcB: tfc.Variable;
}

export function toVariables(tf: TF, p: NetParams): NetVariables {
  return {
    conv: p.convs.map((c) => ({
      w: tf.variable(tf.tensor4d(c.w, [3, 3, c.cin, c.cout])),
      gamma: tf.variable(tf.tensor1d(c.gamma)),
      beta: tf.variable(tf.tensor1d(c.beta)),
    })),
    fcW: tf.variable(tf.tensor2d(p.fc.w, [p.fc.w.length / p.classes, p.classes])),
    fcB: tf.variable(tf.tensor1d(p.fc.b)),
  };
}

/** Copies trained values back into plain arrays. */
export async function readVariables(v: NetVariables, p: NetParams): Promise<void> {
  for (let i = 0; i < p.convs.length; i++) {
    p.convs[i].w = (await v.conv[i].w.data()) as Float32Array;
    p.convs[i].gamma = (await v.conv[i].gamma.data()) as Float32Array;
    p.convs[i].beta = (await v.conv[i].beta.data()) as Float32Array;
  }
  p.fc.w = (await v.fcW.data()) as Float32Array;
  p.fc.b = (await v.fcB.data()) as Float32Array;
}

/**
 * Logits for an NHWC batch. Training mode normalizes with the batch's own moments and returns
 * them (for the running averages); inference uses the running statistics in `p`.
 */
export function forward(
  tf: TF,
  p: NetParams,
  v: NetVariables,
  x: tfc.Tensor4D,
  training: boolean,
): { logits: tfc.Tensor2D; moments: { mean: tfc.Tensor; variance: tfc.Tensor }[] } {
  const moments: { mean: tfc.Tensor; variance: tfc.Tensor }[] = [];
  const convBn = (h: tfc.Tensor4D, i: number): tfc.Tensor4D => {
    const c = p.convs[i];
    const y = tf.conv2d(h, v.conv[i].w as tfc.Tensor4D, c.stride, 1);
    let mean: tfc.Tensor;
    let variance: tfc.Tensor;
    if (training) {
      ({ mean, variance } = tf.moments(y, [0, 1, 2]));
      moments.push({ mean, variance });
    } else {
      mean = tf.tensor1d(c.mean);
      variance = tf.tensor1d(c.variance);
    }
    return tf.add(
      tf.mul(tf.div(tf.sub(y, mean), tf.sqrt(tf.add(variance, BN_EPSILON))), v.conv[i].gamma),
      v.conv[i].beta,
    ) as tfc.Tensor4D;
  };
  let h = tf.relu(convBn(x, 0));
  h = tf.relu(convBn(h, 1));
  for (const first of [2, 5]) {
    if (first === 5) h = tf.relu(convBn(h, 4));
    const branch = convBn(tf.relu(convBn(h, first)), first + 1);
    h = tf.relu(tf.add(h, branch)) as tfc.Tensor4D;
  }
  const pooled = tf.mean(h, [1, 2]) as tfc.Tensor2D;
  return { logits: tf.add(tf.matMul(pooled, v.fcW), v.fcB), moments };
}
