import type * as tfc from '@tensorflow/tfjs-core';
import type { OnnxModel } from '../onnx/model.js';
import { Runner } from '../runtime/session.js';
import { forward, toVariables, type NetParams } from './net.js';
import { sceneInput } from './predict.js';
import { scene, SEEDS } from './world.js';

/**
 * The exported ONNX model against the TF.js network it came from, on the same held-out scenes:
 * ONNX Runtime's top-1 over n scenes and the largest logit difference over the first 64.
 */
export async function compareWithOnnx(
  tf: typeof tfc,
  params: NetParams,
  model: OnnxModel,
  n: number,
): Promise<{ accuracy: number; maxLogitDifference: number }> {
  const size = params.size;
  const vars = toVariables(tf, params);
  const runner = await Runner.create(model, { threads: 1 });
  let correct = 0;
  let maxDiff = 0;
  try {
    for (let i = 0; i < n; i += 64) {
      const scenes = Array.from({ length: Math.min(64, n - i) }, (_, j) =>
        scene(SEEDS.validation + i + j, { size }),
      );
      const nchw = new Float32Array(scenes.length * 3 * size * size);
      scenes.forEach((s, j) => sceneInput(s.rgb, nchw, j * 3 * size * size));
      const { logits } = await runner.run(nchw, [scenes.length, 3, size, size]);
      const classes = logits.dims[1];
      scenes.forEach((s, j) => {
        const row = logits.data.subarray(j * classes, (j + 1) * classes);
        if (row.indexOf(Math.max(...row)) === s.label) correct++;
      });
      if (i === 0) {
        const nhwc = new Float32Array(nchw.length);
        scenes.forEach((s, j) =>
          s.rgb.forEach((v, k) => (nhwc[j * s.rgb.length + k] = v / 127.5 - 1)),
        );
        const t = tf.tidy(
          () =>
            forward(tf, params, vars, tf.tensor4d(nhwc, [scenes.length, size, size, 3]), false)
              .logits,
        );
        const ref = await t.data();
        t.dispose();
        for (let k = 0; k < ref.length; k++)
          maxDiff = Math.max(maxDiff, Math.abs(ref[k] - logits.data[k]));
      }
    }
  } finally {
    await runner.release();
    tf.dispose([...vars.conv.flatMap((c) => [c.w, c.gamma, c.beta]), vars.fcW, vars.fcB]);
  }
  return { accuracy: (100 * correct) / n, maxLogitDifference: maxDiff };
}
