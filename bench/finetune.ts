// Time per fine-tuning step on the real MobileNetV2 (one exemplar, SGD): local and global, with
// the tail from the last 1280-channel block (conv61) and from a 96 -> 576 block (conv43), on the
// wasm backend with ruledit's kernel shims and on the TF.js CPU backend, in the same run.
// Usage: npx tsx bench/finetune.ts [--steps N] [--cpu-steps N]
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type * as TF from '@tensorflow/tfjs-core';
import { loadExemplar } from '../src/concepts/exemplar.ts';
import { loadPreprocess } from '../src/data/preprocess.ts';
import { gradEngine } from '../src/grad/engine.ts';
import { importTail } from '../src/grad/tail.ts';
import { findBlock, listBlocks } from '../src/onnx/blocks.ts';
import { GraphView } from '../src/onnx/graph.ts';
import { loadModel } from '../src/onnx/model.ts';
import { Runner } from '../src/runtime/session.ts';

const args = process.argv.slice(2);
const arg = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const steps = arg('--steps', 10);
const cpuSteps = arg('--cpu-steps', 3);
const shared = resolve(import.meta.dirname, '../../shared');
if (!existsSync(shared)) {
  console.error('bench/finetune: ../shared is absent');
  process.exit(2);
}
const model = await loadModel(join(shared, 'models/mobilenetv2-imagenet/model.onnx'));
const spec = await loadPreprocess(join(shared, 'models/mobilenetv2-imagenet/preprocess.json'));
const ex = join(shared, 'data/exemplars');
const exemplar = await loadExemplar(
  join(ex, 'street-road/image.png'),
  join(ex, 'street-road/road_mask.png'),
  { texture: join(ex, 'snow_texture.jpg') },
  spec,
);
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
