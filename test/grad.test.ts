import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { gradEngine } from '../src/grad/engine.ts';
import { registerGradShims } from '../src/grad/shims.ts';
import { isRuleditError } from '../src/errors.ts';
import { rng } from '../src/util/random.ts';

type Shape = [number, number, number, number];
type Pad = 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;

function randomData(shape: number[], seed: number, scale = 1): Float32Array {
  const next = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: n }, () => (next() * 2 - 1) * scale);
}

/** max |a - b| over max |b|: entries near zero would make an elementwise ratio meaningless. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let diff = 0;
  let ref = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    ref = Math.max(ref, Math.abs(b[i]));
  }
  return diff / Math.max(ref, 1e-30);
}

interface Input {
  data: Float32Array;
  shape: number[];
}

/** Runs one kernel on the given backend; the cpu backend's own kernels are the reference. */
async function runKernel(
  backend: 'cpu' | 'wasm',
  kernel: string,
  inputs: Record<string, Input>,
  attrs: Record<string, unknown>,
): Promise<{ data: Float32Array; shape: number[] }> {
  await gradEngine({ backend });
  const tensors = Object.fromEntries(
    Object.entries(inputs).map(([k, v]) => [k, tf.tensor(v.data, v.shape)]),
  );
  const out = tf.engine().runKernel(kernel, tensors, attrs as tf.NamedAttrMap) as tf.Tensor;
  const result = { data: (await out.data()) as Float32Array, shape: out.shape };
  out.dispose();
  Object.values(tensors).forEach((t) => t.dispose());
  return result;
}

function outShape(
  x: Shape,
  filter: Shape,
  strides: number,
  dilations: number,
  pad: Pad,
  depthwise: boolean,
): Shape {
  const info = tf.backend_util.computeConv2DInfo(
    x,
    filter,
    strides,
    dilations,
    pad,
    undefined,
    depthwise,
  );
  return info.outShape;
}

interface Case {
  x: Shape;
  k: number;
  cout: number;
  strides: number;
  pad: Pad;
  dilations?: number;
}

const conv2dCases: Case[] = [
  { x: [2, 7, 7, 5], k: 1, cout: 6, strides: 1, pad: 'valid' },
  { x: [2, 7, 7, 5], k: 1, cout: 6, strides: 2, pad: 'same' },
  { x: [2, 8, 7, 4], k: 3, cout: 6, strides: 1, pad: 'same' },
  { x: [3, 8, 9, 4], k: 3, cout: 5, strides: 2, pad: 'same' },
  { x: [1, 9, 8, 3], k: 3, cout: 4, strides: 2, pad: 'valid' },
  { x: [2, 6, 6, 3], k: 3, cout: 4, strides: 1, pad: 1 },
  {
    x: [2, 7, 6, 3],
    k: 3,
    cout: 4,
    strides: 2,
    pad: [
      [0, 0],
      [1, 2],
      [0, 1],
      [0, 0],
    ],
  },
];

const depthwiseCases: Case[] = [
  { x: [2, 7, 7, 5], k: 1, cout: 5, strides: 1, pad: 'valid' },
  { x: [2, 8, 7, 6], k: 3, cout: 6, strides: 1, pad: 'same' },
  { x: [3, 8, 9, 4], k: 3, cout: 4, strides: 2, pad: 'same' },
  { x: [2, 9, 8, 3], k: 3, cout: 3, strides: 2, pad: 'valid' },
  { x: [2, 9, 9, 4], k: 3, cout: 4, strides: 1, pad: 'same', dilations: 2 },
  { x: [1, 10, 9, 3], k: 3, cout: 3, strides: 1, pad: 'valid', dilations: 3 },
  { x: [2, 11, 10, 3], k: 3, cout: 3, strides: 2, pad: 'same', dilations: 2 },
  {
    x: [2, 7, 6, 3],
    k: 3,
    cout: 3,
    strides: 2,
    pad: [
      [0, 0],
      [1, 2],
      [0, 1],
      [0, 0],
    ],
  },
];

function label(c: Case): string {
  return `x=${c.x.join('x')} k=${c.k} s=${c.strides} pad=${JSON.stringify(c.pad)} d=${c.dilations ?? 1}`;
}

async function compare(
  kernel: string,
  inputs: Record<string, Input>,
  attrs: Record<string, unknown>,
) {
  const ref = await runKernel('cpu', kernel, inputs, attrs);
  const got = await runKernel('wasm', kernel, inputs, attrs);
  assert.deepEqual(got.shape, ref.shape);
  return relErr(got.data, ref.data);
}

test('Conv2DBackpropFilter shim matches the cpu kernel', async () => {
  for (const [i, c] of conv2dCases.entries()) {
    const filterShape: Shape = [c.k, c.k, c.x[3], c.cout];
    const dy = outShape(c.x, filterShape, c.strides, 1, c.pad, false);
    const inputs = {
      x: { data: randomData(c.x, 10 + i), shape: c.x },
      dy: { data: randomData(dy, 20 + i), shape: dy },
    };
    const attrs = { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', filterShape };
    const err = await compare('Conv2DBackpropFilter', inputs, attrs);
    assert.ok(err <= 1e-4, `${label(c)}: relative error ${err}`);
  }
});

test('Conv2DBackpropFilter shim handles dilations', async () => {
  // The cpu kernel ignores dilations, so the reference is the gradient of the equivalent
  // undilated kernel with zeros between taps, read at the taps.
  const x: Shape = [2, 9, 9, 3];
  const k = 3;
  const d = 2;
  const cout = 4;
  const big = (k - 1) * d + 1;
  const dy = outShape(x, [k, k, 3, cout], 1, d, 'same', false);
  const inputs = {
    x: { data: randomData(x, 31), shape: x },
    dy: { data: randomData(dy, 32), shape: dy },
  };
  const ref = await runKernel('cpu', 'Conv2DBackpropFilter', inputs, {
    strides: 1,
    pad: 'same',
    dataFormat: 'NHWC',
    filterShape: [big, big, 3, cout],
  });
  const got = await runKernel('wasm', 'Conv2DBackpropFilter', inputs, {
    strides: 1,
    pad: 'same',
    dataFormat: 'NHWC',
    filterShape: [k, k, 3, cout],
    dilations: d,
  });
  const err = relErr(got.data, takeTaps(ref.data, ref.shape, d));
  assert.ok(err <= 1e-4, `dilated filter gradient: relative error ${err}`);
});

test('Conv2DBackpropInput shim matches the cpu kernel', async () => {
  for (const [i, c] of conv2dCases.entries()) {
    const filterShape: Shape = [c.k, c.k, c.x[3], c.cout];
    const dy = outShape(c.x, filterShape, c.strides, 1, c.pad, false);
    const inputs = {
      dy: { data: randomData(dy, 40 + i), shape: dy },
      filter: { data: randomData(filterShape, 50 + i), shape: filterShape },
    };
    const attrs = { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', inputShape: c.x };
    const err = await compare('Conv2DBackpropInput', inputs, attrs);
    assert.ok(err <= 1e-4, `${label(c)}: relative error ${err}`);
  }
});

test('depthwise backprop shims match the cpu kernels', async () => {
  for (const [i, c] of depthwiseCases.filter((c) => (c.dilations ?? 1) === 1).entries()) {
    const filterShape: Shape = [c.k, c.k, c.x[3], 1];
    const dy = outShape(c.x, filterShape, c.strides, 1, c.pad, true);
    const dyIn = { data: randomData(dy, 60 + i), shape: dy };
    const common = { strides: c.strides, pad: c.pad, dilations: 1 };
    const errF = await compare(
      'DepthwiseConv2dNativeBackpropFilter',
      { x: { data: randomData(c.x, 70 + i), shape: c.x }, dy: dyIn },
      { ...common, filterShape },
    );
    assert.ok(errF <= 1e-4, `filter ${label(c)}: relative error ${errF}`);
    const errI = await compare(
      'DepthwiseConv2dNativeBackpropInput',
      { dy: dyIn, filter: { data: randomData(filterShape, 80 + i), shape: filterShape } },
      { ...common, inputShape: c.x },
    );
    assert.ok(errI <= 1e-4, `input ${label(c)}: relative error ${errI}`);
  }
});

/** The kernel with d-1 zeros between taps: an undilated stand-in for a dilated kernel. */
function spreadTaps(
  data: Float32Array,
  [kh, kw, a, b]: Shape,
  d: number,
): { data: Float32Array; shape: Shape } {
  const shape: Shape = [(kh - 1) * d + 1, (kw - 1) * d + 1, a, b];
  const out = new Float32Array(shape.reduce((p, q) => p * q, 1));
  for (let i = 0; i < kh; i++)
    for (let j = 0; j < kw; j++)
      for (let k = 0; k < a * b; k++)
        out[(i * d * shape[1] + j * d) * a * b + k] = data[(i * kw + j) * a * b + k];
  return { data: out, shape };
}

/** Reads the taps of a spread kernel back out. */
function takeTaps(data: Float32Array, shape: number[], d: number): Float32Array {
  return tf.tidy(
    () =>
      tf
        .stridedSlice(tf.tensor(data, shape), [0, 0, 0, 0], shape, [d, d, 1, 1])
        .dataSync() as Float32Array,
  );
}

test('depthwise backprop shims handle dilations', async () => {
  // The cpu kernels accept dilations but index as if there were none, so the reference is the
  // undilated kernel with zeros between its taps.
  for (const [i, c] of depthwiseCases.filter((c) => (c.dilations ?? 1) > 1).entries()) {
    const d = c.dilations!;
    const filterShape: Shape = [c.k, c.k, c.x[3], 1];
    const filter = randomData(filterShape, 110 + i);
    const big = spreadTaps(filter, filterShape, d);
    const dy = outShape(c.x, filterShape, c.strides, d, c.pad, true);
    const dyIn = { data: randomData(dy, 120 + i), shape: dy };
    const x = { data: randomData(c.x, 130 + i), shape: c.x };
    const common = { strides: c.strides, pad: c.pad };

    const refF = await runKernel(
      'cpu',
      'DepthwiseConv2dNativeBackpropFilter',
      { x, dy: dyIn },
      {
        ...common,
        dilations: 1,
        filterShape: big.shape,
      },
    );
    const gotF = await runKernel(
      'wasm',
      'DepthwiseConv2dNativeBackpropFilter',
      { x, dy: dyIn },
      {
        ...common,
        dilations: d,
        filterShape,
      },
    );
    const errF = relErr(gotF.data, takeTaps(refF.data, refF.shape, d));
    assert.ok(errF <= 1e-4, `filter ${label(c)}: relative error ${errF}`);

    const refI = await runKernel(
      'cpu',
      'DepthwiseConv2dNativeBackpropInput',
      { dy: dyIn, filter: big },
      {
        ...common,
        dilations: 1,
        inputShape: c.x,
      },
    );
    const gotI = await runKernel(
      'wasm',
      'DepthwiseConv2dNativeBackpropInput',
      { dy: dyIn, filter: { data: filter, shape: filterShape } },
      {
        ...common,
        dilations: d,
        inputShape: c.x,
      },
    );
    const errI = relErr(gotI.data, refI.data);
    assert.ok(errI <= 1e-4, `input ${label(c)}: relative error ${errI}`);
  }
});

test('unsupported layouts and channel multipliers are user errors', async () => {
  await gradEngine({ backend: 'wasm' });
  const x = tf.zeros([1, 4, 4, 2]);
  const dy = tf.zeros([1, 4, 4, 2]);
  try {
    assert.throws(
      () =>
        tf.engine().runKernel(
          'Conv2DBackpropFilter',
          { x, dy },
          {
            strides: 1,
            pad: 'same',
            dataFormat: 'NCHW',
            filterShape: [3, 3, 2, 2],
          },
        ),
      (e: unknown) => isRuleditError(e) && e.code === 'unsupported-layout',
    );
    assert.throws(
      () =>
        tf.engine().runKernel(
          'DepthwiseConv2dNativeBackpropFilter',
          { x, dy: tf.zeros([1, 4, 4, 4]) },
          {
            strides: 1,
            pad: 'same',
            dilations: 1,
            filterShape: [3, 3, 2, 2],
          },
        ),
      (e: unknown) => isRuleditError(e) && e.code === 'unsupported-op',
    );
  } finally {
    tf.dispose([x, dy]);
  }
});

/** conv 3x3 -> relu -> depthwise 3x3 stride 2 -> weighted mean, as one scalar. */
function tinyNet(x: tf.Tensor4D, w1: tf.Tensor4D, w2: tf.Tensor4D, r: tf.Tensor): tf.Scalar {
  const h = tf.relu(tf.conv2d(x, w1, 1, 'same'));
  const y = tf.depthwiseConv2d(h, w2, 2, 'same');
  return tf.mean(tf.mul(y, r));
}

const netShapes: Record<'x' | 'w1' | 'w2' | 'y', Shape> = {
  x: [2, 7, 7, 3],
  w1: [3, 3, 3, 4],
  w2: [3, 3, 4, 1],
  y: [2, 4, 4, 4],
};

test('tiny conv net gradients on wasm match central finite differences', async () => {
  await gradEngine({ backend: 'wasm' });
  const values = [
    randomData([...netShapes.x], 91),
    randomData([...netShapes.w1], 92, 0.5),
    randomData([...netShapes.w2], 93, 0.5),
  ];
  const shapes = [netShapes.x, netShapes.w1, netShapes.w2];
  const rData = randomData([...netShapes.y], 94);
  const r = tf.tensor(rData, [...netShapes.y]);

  const params = values.map((v, i) => tf.tensor(v, shapes[i])) as [
    tf.Tensor4D,
    tf.Tensor4D,
    tf.Tensor4D,
  ];
  const grads = tf.grads((a, b, c) =>
    tinyNet(a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D, r),
  )(params);
  const analytic = grads.map((g) => Float32Array.from(g.dataSync()));
  tf.dispose([...grads, ...params]);

  // The loss's final weighted mean is accumulated in float64: outputs a perturbation does not
  // reach are bit-identical on both sides and cancel exactly.
  const loss = (vals: Float32Array[]): number => {
    const y = tf.tidy(() => {
      const [x, w1, w2] = vals.map((v, i) => tf.tensor(v, shapes[i])) as tf.Tensor4D[];
      const h = tf.relu(tf.conv2d(x, w1, 1, 'same'));
      return tf.depthwiseConv2d(h, w2, 2, 'same');
    });
    const data = y.dataSync();
    y.dispose();
    let s = 0;
    for (let i = 0; i < data.length; i++) s += data[i] * rData[i];
    return s / data.length;
  };

  const eps = 1e-2;
  const pick = rng(95);
  for (const [p, vals] of values.entries()) {
    const scale = analytic[p].reduce((m, g) => Math.max(m, Math.abs(g)), 0);
    let checked = 0;
    for (let attempt = 0; attempt < 40 && checked < 5; attempt++) {
      const i = Math.floor(pick() * vals.length);
      const at = (delta: number) => {
        const copy = values.map((v) => v.slice());
        copy[p][i] += delta;
        return loss(copy);
      };
      const [lo, mid, hi] = [at(-eps), at(0), at(eps)];
      // A relu kink inside [-eps, eps] makes the one-sided slopes differ; such a coordinate
      // says nothing about the gradient, so another one is drawn.
      const forward = (hi - mid) / eps;
      const backward = (mid - lo) / eps;
      if (Math.abs(forward - backward) > 1e-3 * scale) continue;
      const fd = (hi - lo) / (2 * eps);
      const err = Math.abs(fd - analytic[p][i]) / Math.max(Math.abs(fd), 1e-2 * scale);
      assert.ok(
        err <= 1e-3,
        `param ${p} coord ${i}: fd ${fd} vs analytic ${analytic[p][i]} (rel ${err})`,
      );
      checked++;
    }
    assert.ok(checked >= 3, `param ${p}: only ${checked} kink-free coordinates`);
  }
  r.dispose();
});

test('repeated gradient steps on wasm do not leak tensors', async () => {
  await gradEngine({ backend: 'wasm' });
  const x = tf.tensor(randomData([...netShapes.x], 101), [...netShapes.x]) as tf.Tensor4D;
  const w1 = tf.variable(
    tf.tensor(randomData([...netShapes.w1], 102, 0.5), [...netShapes.w1]) as tf.Tensor4D,
  );
  const w2 = tf.variable(
    tf.tensor(randomData([...netShapes.w2], 103, 0.5), [...netShapes.w2]) as tf.Tensor4D,
  );
  const r = tf.tensor(randomData([...netShapes.y], 104), [...netShapes.y]);
  const opt = tf.train.sgd(0.01);
  const step = () =>
    opt.minimize(
      () => tinyNet(x, w1 as unknown as tf.Tensor4D, w2 as unknown as tf.Tensor4D, r),
      false,
      [w1, w2],
    );
  const backend = tf.engine().backend;
  step();
  const tensors = tf.memory().numTensors;
  const dataIds = backend.numDataIds();
  for (let i = 0; i < 5; i++) step();
  assert.equal(tf.memory().numTensors, tensors);
  assert.equal(backend.numDataIds(), dataIds);
  // Also the input gradient, which the optimizer above does not need.
  const before = tf.memory().numTensors;
  for (let i = 0; i < 5; i++) {
    tf.dispose(
      tf.grads((a) =>
        tinyNet(a as tf.Tensor4D, w1 as unknown as tf.Tensor4D, w2 as unknown as tf.Tensor4D, r),
      )([x]),
    );
  }
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([x, w1, w2, r]);
  opt.dispose();
});

test('gradEngine is idempotent and registers the shims once', async () => {
  const a = await gradEngine({ backend: 'wasm' });
  const names = registerGradShims();
  const b = await gradEngine({ backend: 'wasm' });
  assert.equal(a.backend, 'wasm');
  assert.equal(b.backend, 'wasm');
  assert.equal(registerGradShims(), names);
  assert.equal(a.tf.getBackend(), 'wasm');
  // tfjs-node is not installed here, so 'auto' falls back to wasm with the shims.
  assert.equal((await gradEngine()).backend, 'wasm');
  assert.equal((await gradEngine({ backend: 'cpu' })).backend, 'cpu');
  for (const k of [
    'Conv2DBackpropFilter',
    'DepthwiseConv2dNativeBackpropFilter',
    'DepthwiseConv2dNativeBackpropInput',
  ]) {
    assert.ok(tf.getKernel(k, 'wasm') != null, k);
  }
});
