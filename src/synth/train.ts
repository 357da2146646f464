import type * as tfc from '@tensorflow/tfjs-core';
import { gradEngine, type GradBackend } from '../grad/engine.js';
import { forward, initParams, readVariables, toVariables, type NetParams } from './net.js';
import { CLASSES, scene, SEEDS } from './world.js';

export interface TrainOptions {
  steps: number;
  batch: number;
  /** Peak Adam learning rate (linear warm-up, then cosine decay to zero). */
  lr: number;
  seed: number;
  size?: number;
  /** Held-out scenes for the final accuracy (default 2000). */
  validation?: number;
  backend?: GradBackend;
  onProgress?: (p: {
    step: number;
    steps: number;
    loss: number;
    accuracy: number;
    seconds: number;
  }) => void;
}

export interface TrainResult {
  params: NetParams;
  /** Top-1 in percent on held-out scenes, TF.js inference mode. */
  validationAccuracy: number;
  seconds: number;
  backend: string;
}

/** Normalized NHWC batch ((p/255 - 0.5) / 0.5, the model card's preprocessing) and labels. */
export function sceneBatch(seeds: number[], size: number): { x: Float32Array; labels: number[] } {
  const x = new Float32Array(seeds.length * size * size * 3);
  const labels: number[] = [];
  seeds.forEach((seed, b) => {
    const s = scene(seed, { size });
    labels.push(s.label);
    const off = b * s.rgb.length;
    for (let i = 0; i < s.rgb.length; i++) x[off + i] = s.rgb[i] / 127.5 - 1;
  });
  return { x, labels };
}

/**
 * Trains the built-in scene classifier on freshly drawn scenes (every step sees new images, so
 * there is nothing to overfit), then re-estimates BatchNorm statistics over 40 batches and
 * measures held-out accuracy.
 */
export async function trainSceneModel(options: TrainOptions): Promise<TrainResult> {
  const { tf, backend } = await gradEngine({ backend: options.backend });
  const size = options.size ?? 64;
  const params = initParams(CLASSES.length, size, options.seed);
  const vars = toVariables(tf, params);
  const trainable = [...vars.conv.flatMap((c) => [c.w, c.gamma, c.beta]), vars.fcW, vars.fcB];
  const optimizer = tf.train.adam(options.lr);
  const start = performance.now();
  const base = SEEDS.train + options.seed * 10_000_000;
  let lossSum = 0;
  let correct = 0;
  let seen = 0;
  const warmup = Math.min(200, options.steps / 10);
  for (let step = 0; step < options.steps; step++) {
    const lr =
      step < warmup
        ? (options.lr * (step + 1)) / warmup
        : options.lr * 0.5 * (1 + Math.cos((Math.PI * (step - warmup)) / (options.steps - warmup)));
    // tfjs keeps the rate in a field it reads on every update.
    (optimizer as unknown as { learningRate: number }).learningRate = lr;
    const seeds = Array.from({ length: options.batch }, (_, i) => base + step * options.batch + i);
    const { x, labels } = sceneBatch(seeds, size);
    const { loss, predicted } = tf.tidy(() => {
      const input = tf.tensor4d(x, [options.batch, size, size, 3]);
      const onehot = tf.oneHot(tf.tensor1d(labels, 'int32'), params.classes);
      let predicted: tfc.Tensor | undefined;
      const cost = optimizer.minimize(
        () => {
          const { logits } = forward(tf, params, vars, input, true);
          // minimize() disposes what its function made; keep the predictions for the progress line.
          predicted = tf.keep(tf.argMax(logits, 1));
          return tf.losses.softmaxCrossEntropy(onehot, logits) as tfc.Scalar;
        },
        true,
        trainable,
      )!;
      return { loss: cost, predicted: predicted! };
    });
    lossSum += (await loss.data())[0];
    const p = await predicted.data();
    tf.dispose([loss, predicted]);
    for (let i = 0; i < labels.length; i++) if (p[i] === labels[i]) correct++;
    seen += labels.length;
    if ((step + 1) % 50 === 0 || step + 1 === options.steps) {
      options.onProgress?.({
        step: step + 1,
        steps: options.steps,
        loss: lossSum / (seen / options.batch),
        accuracy: (100 * correct) / seen,
        seconds: (performance.now() - start) / 1000,
      });
      lossSum = correct = seen = 0;
    }
  }
  await readVariables(vars, params);
  await recalibrate(tf, params, options.seed);
  const validationAccuracy = await accuracy(
    tf,
    params,
    SEEDS.validation,
    options.validation ?? 2000,
  );
  tf.dispose([...trainable]);
  optimizer.dispose();
  return { params, validationAccuracy, seconds: (performance.now() - start) / 1000, backend };
}

/** BatchNorm population statistics: the mean of 40 batches' moments, weights fixed. */
async function recalibrate(tf: typeof tfc, params: NetParams, seed: number): Promise<void> {
  const vars = toVariables(tf, params);
  const batches = 40;
  const sums = params.convs.map((c) => ({
    mean: new Float64Array(c.cout),
    variance: new Float64Array(c.cout),
  }));
  for (let b = 0; b < batches; b++) {
    const seeds = Array.from(
      { length: 64 },
      (_, i) => SEEDS.calibration + seed * 100_000 + b * 64 + i,
    );
    const { x } = sceneBatch(seeds, params.size);
    const moments = tf.tidy(() => {
      const out = forward(
        tf,
        params,
        vars,
        tf.tensor4d(x, [64, params.size, params.size, 3]),
        true,
      );
      return out.moments.map((m) => [m.mean, m.variance]);
    });
    for (let i = 0; i < moments.length; i++) {
      const [m, v] = await Promise.all(moments[i].map((t) => t.data()));
      for (let c = 0; c < m.length; c++) {
        sums[i].mean[c] += m[c] / batches;
        sums[i].variance[c] += v[c] / batches;
      }
    }
    tf.dispose(moments.flat());
  }
  params.convs.forEach((c, i) => {
    c.mean = Float32Array.from(sums[i].mean);
    c.variance = Float32Array.from(sums[i].variance);
  });
  disposeVariables(tf, vars);
}

/** Top-1 in percent over n scenes from a seed range, in inference mode. */
export async function accuracy(
  tf: typeof tfc,
  params: NetParams,
  from: number,
  n: number,
): Promise<number> {
  const vars = toVariables(tf, params);
  let correct = 0;
  for (let i = 0; i < n; i += 100) {
    const seeds = Array.from({ length: Math.min(100, n - i) }, (_, j) => from + i + j);
    const { x, labels } = sceneBatch(seeds, params.size);
    const predicted = tf.tidy(() =>
      tf.argMax(
        forward(
          tf,
          params,
          vars,
          tf.tensor4d(x, [seeds.length, params.size, params.size, 3]),
          false,
        ).logits,
        1,
      ),
    );
    const p = await predicted.data();
    predicted.dispose();
    labels.forEach((l, j) => (correct += p[j] === l ? 1 : 0));
  }
  disposeVariables(tf, vars);
  return (100 * correct) / n;
}

function disposeVariables(tf: typeof tfc, v: ReturnType<typeof toVariables>): void {
  tf.dispose([...v.conv.flatMap((c) => [c.w, c.gamma, c.beta]), v.fcW, v.fcB]);
}
