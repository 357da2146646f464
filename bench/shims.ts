// Times one gradient step (forward + input and weight gradients) of the two layer shapes that
// dominate MobileNet-style tails, on wasm with the shims and on the pure-JS cpu backend.
// Run: node --import tsx bench/shims.ts
import * as tf from '@tensorflow/tfjs-core';
import { gradEngine } from '../src/grad/engine.ts';
import { replacedWasmKernels } from '../src/grad/shims.ts';

function seeded(shape: number[], seed: number): tf.Tensor {
  let s = seed >>> 0;
  const n = shape.reduce((a, b) => a * b, 1);
  const data = Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
  return tf.tensor(data, shape);
}

/** Median wall time in ms; each run waits for its results so async backends are timed fully. */
async function time(fn: () => tf.Tensor[], runs: number, warmup = 1): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs + warmup; i++) {
    const t0 = performance.now();
    const out = fn();
    await Promise.all(out.map((t) => t.data()));
    tf.dispose(out);
    if (i >= warmup) times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

interface Workload {
  name: string;
  shapes: { x: number[]; w: number[]; dy: number[] };
  forward: (x: tf.Tensor4D, w: tf.Tensor4D) => tf.Tensor4D;
}

const workloads: Workload[] = [
  {
    name: 'conv 1x1 14x14x96 -> 576, batch 8',
    shapes: { x: [8, 14, 14, 96], w: [1, 1, 96, 576], dy: [8, 14, 14, 576] },
    forward: (x, w) => tf.conv2d(x, w, 1, 'valid'),
  },
  {
    name: 'depthwise 3x3 14x14x576, batch 8',
    shapes: { x: [8, 14, 14, 576], w: [3, 3, 576, 1], dy: [8, 14, 14, 576] },
    forward: (x, w) => tf.depthwiseConv2d(x, w, 1, 'same'),
  },
];

async function step(
  backend: 'wasm' | 'cpu',
  wl: Workload,
  runs: number,
  warmup: number,
): Promise<number> {
  await gradEngine({ backend });
  const x = seeded(wl.shapes.x, 1) as tf.Tensor4D;
  const w = seeded(wl.shapes.w, 2) as tf.Tensor4D;
  const dy = seeded(wl.shapes.dy, 3) as tf.Tensor4D;
  const grad = tf.grads((a, b) => wl.forward(a as tf.Tensor4D, b as tf.Tensor4D));
  const ms = await time(() => grad([x, w], dy), runs, warmup);
  tf.dispose([x, w, dy]);
  return ms;
}

console.log('gradient step (forward + dx + dW), median ms');
for (const wl of workloads) {
  const wasm = await step('wasm', wl, 5, 1);
  // The cpu backend's 1x1 filter gradient is a scalar loop taking many seconds: one cold run.
  const cpu = await step('cpu', wl, 1, 0);
  console.log(
    `${wl.name}: wasm+shims ${wasm.toFixed(1)} ms, cpu ${cpu.toFixed(1)} ms, ` +
      `cpu/wasm ${(cpu / wasm).toFixed(1)}x`,
  );
}

// Whether replacing wasm's own Conv2DBackpropInput pays off, per shape.
const inputCases = [
  { name: '1x1 s1 14x14x96 <- 576', x: [8, 14, 14, 96], w: [1, 1, 96, 576], strides: 1 },
  { name: '3x3 s1 28x28x64 <- 64', x: [8, 28, 28, 64], w: [3, 3, 64, 64], strides: 1 },
  { name: '3x3 s2 28x28x64 <- 64', x: [8, 28, 28, 64], w: [3, 3, 64, 64], strides: 2 },
];
await gradEngine({ backend: 'wasm' });
console.log('\nper kernel on wasm, median ms');
for (const wl of workloads) {
  const x = seeded(wl.shapes.x, 1) as tf.Tensor4D;
  const w = seeded(wl.shapes.w, 2) as tf.Tensor4D;
  const dy = seeded(wl.shapes.dy, 3) as tf.Tensor4D;
  const depthwise = wl.name.startsWith('depthwise');
  const e = tf.engine();
  const attrs = { strides: 1, pad: depthwise ? 'same' : 'valid', dilations: 1, dataFormat: 'NHWC' };
  const k = depthwise ? 'DepthwiseConv2dNative' : 'Conv2D';
  const fwd = await time(() => [wl.forward(x, w)], 5);
  const dx = await time(
    () => [
      e.runKernel(
        `${k}BackpropInput`,
        { dy, filter: w },
        { ...attrs, inputShape: wl.shapes.x },
      ) as tf.Tensor,
    ],
    5,
  );
  const dw = await time(
    () => [
      e.runKernel(
        `${k}BackpropFilter`,
        { x, dy },
        { ...attrs, filterShape: wl.shapes.w },
      ) as tf.Tensor,
    ],
    5,
  );
  console.log(`${wl.name}: forward ${fwd.toFixed(1)}, dx ${dx.toFixed(1)}, dW ${dw.toFixed(1)}`);
  tf.dispose([x, w, dy]);
}
const shim = tf.getKernel('Conv2DBackpropInput', 'wasm');
const builtin = replacedWasmKernels.get('Conv2DBackpropInput');
console.log('\nConv2DBackpropInput on wasm, median ms');
for (const c of inputCases) {
  const filter = seeded(c.w, 4) as tf.Tensor4D;
  const x = seeded(c.x, 5) as tf.Tensor4D;
  const dy = tf.conv2d(x, filter, c.strides, 'same');
  const run = () => [
    tf.conv2dTranspose(dy, filter, c.x as [number, number, number, number], c.strides, 'same'),
  ];
  const fwd = await time(() => [tf.conv2d(x, filter, c.strides, 'same')], 5);
  const ours = await time(run, 5);
  let theirs = NaN;
  if (builtin != null) {
    tf.unregisterKernel('Conv2DBackpropInput', 'wasm');
    tf.registerKernel(builtin);
    // wasm binds a kernel to its C function when the backend starts; this one was not there then.
    builtin.setupFunc?.(tf.backend());
    theirs = await time(run, 3);
    tf.unregisterKernel('Conv2DBackpropInput', 'wasm');
    tf.registerKernel(shim!);
  }
  console.log(
    `${c.name}: forward ${fwd.toFixed(1)}, shim ${ours.toFixed(1)}, built-in ${theirs.toFixed(1)}, ` +
      `built-in/shim ${(theirs / ours).toFixed(1)}x`,
  );
  tf.dispose([filter, x, dy]);
}
