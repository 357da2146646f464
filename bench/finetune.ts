// Time per fine-tuning step on the real MobileNetV2 (one exemplar, SGD): local and global, with
// the tail from the last 1280-channel block (conv61) and from a 96 -> 576 block (conv43), on the
// wasm backend with ruledit's kernel shims and on the TF.js CPU backend, in the same run.
// Usage: npx tsx bench/finetune.ts [--steps N] [--cpu-steps N]
import type * as TF from '@tensorflow/tfjs-core';
import { gradEngine } from '../src/grad/engine.ts';
import { importTail } from '../src/grad/tail.ts';
import { findBlock, listBlocks } from '../src/onnx/blocks.ts';
import { GraphView } from '../src/onnx/graph.ts';
import { Runner } from '../src/runtime/session.ts';
import { flag, snowProblem } from './snow-problem.ts';

const steps = Number(flag('--steps', '10'));
const cpuSteps = Number(flag('--cpu-steps', '3'));
const { model, exemplar } = await snowProblem('bench/finetune');
const view = new GraphView(model.proto.graph!);
const blocks = listBlocks(model.proto.graph!);

/** Mean seconds per SGD step (after one warm-up step) for a tail from `blockName`. */
async function perStep(
  backend: 'wasm' | 'cpu',
  blockName: string,
  scope: 'local' | 'global',
  n: number,
): Promise<number> {
  const { tf } = await gradEngine({ backend });
  const block = findBlock(blocks, blockName);
  const tail = importTail(
    tf,
    model,
    block.key,
    scope === 'local' ? [view.source(block.weight)] : 'all',
  );
  const taps = await (
    await Runner.create(model, { taps: tail.inputs })
  ).run(exemplar.transformed, [1, 3, 224, 224]);
  const feeds = Object.fromEntries(
    tail.inputs.map((t) => [t, tf.tensor(taps.taps[t].data, taps.taps[t].dims)]),
  );
  const target = tf.oneHot(tf.tensor1d([734], 'int32'), 1000);
  const optimizer = tf.train.sgd(1e-4);
  const vars = [...tail.trainable.values()];
  const lossOf = () => tf.losses.softmaxCrossEntropy(target, tail.apply(feeds)) as TF.Scalar;
  const step = () => optimizer.minimize(lossOf, true, vars)?.dispose();
  step();
  const t = performance.now();
  for (let i = 0; i < n; i++) step();
  const seconds = (performance.now() - t) / 1000 / n;
  tf.dispose([...Object.values(feeds), target]);
  optimizer.dispose();
  tail.dispose();
  return seconds;
}

for (const blockName of ['conv61', 'conv43']) {
  for (const scope of ['local', 'global'] as const) {
    const wasm = await perStep('wasm', blockName, scope, steps);
    const cpu = await perStep('cpu', blockName, scope, cpuSteps);
    console.log(
      `${blockName} ${scope.padEnd(6)}: wasm+shims ${(1000 * wasm).toFixed(1)} ms/step, cpu ${(1000 * cpu).toFixed(1)} ms/step, ratio ${(cpu / wasm).toFixed(1)}x (target >= 5x)`,
    );
  }
}
