import type { Exemplar } from '../concepts/exemplar.js';
import type { PreprocessSpec } from '../data/preprocess.js';
import { RuleditError } from '../errors.js';
import { gradEngine, type GradBackend } from '../grad/engine.js';
import { importTail } from '../grad/tail.js';
import type { EditRecord } from '../onnx/history.js';
import { GraphView } from '../onnx/graph.js';
import type { OnnxModel } from '../onnx/model.js';
import { withTraces, type Traces } from '../runtime/block-trace.js';
import { pickBlock } from './layer.js';
import { METHODS, type TunedOptions } from './methods.js';
import { applyChanges } from './record.js';
import { breather } from '../util/breathe.js';

/** The registry's tunable options (methods.ts: layer, steps, lr, optimizer), and what a call gives. */
export interface FinetuneOptions extends TunedOptions<'finetune-local'> {
  spec: PreprocessSpec;
  /** The class the transformed exemplars should be called (fine-tuning needs a label; the edit does not). */
  label: number;
  /** local: the block's weight only; global: every parameter from the block to the logits. */
  scope: 'local' | 'global';
  backend?: GradBackend;
  threads?: number;
  /** The captures of the caller's repeated edits of this model (see Traces). */
  traces?: Traces;
  onProgress?: (message: string) => void;
}

export interface FinetuneReport {
  block: string;
  scope: 'local' | 'global';
  label: number;
  /** Cross-entropy toward the label on the transformed exemplars. */
  lossBefore: number;
  lossAfter: number;
  tensors: number;
  backend: string;
  seconds: number;
}

/**
 * The fine-tuning baselines of docs/method.md section 8: cross-entropy of the full model on the
 * transformed exemplars toward `label`, trained through the network's tail (imported into TF.js)
 * from the block's input; the published setting is SGD, 400 steps, lr 1e-4.
 */
export async function finetune(
  model: OnnxModel,
  exemplars: Exemplar[],
  options: FinetuneOptions,
): Promise<{ model: OnnxModel; record: EditRecord; report: FinetuneReport }> {
  const start = performance.now();
  const say = options.onProgress ?? (() => {});
  const { spec, label, scope } = options;
  const D = METHODS[scope === 'local' ? 'finetune-local' : 'finetune-global'].options;
  const steps = options.steps ?? D.steps.default;
  const lr = options.lr ?? D.lr.default;
  const optimizerName = options.optimizer ?? D.optimizer.default;
  if (!exemplars.length) throw new RuleditError('bad-exemplar', 'no exemplar given');
  const block = await pickBlock(model, spec, options.layer);
  const view = new GraphView(model.proto.graph!);
  const { tf, backend } = await gradEngine({ backend: options.backend });
  // From the block's own node on: global fine-tuning also trains what the exporter wrote after
  // it on the skip path (a residual unit's downsample conv), as the published baseline does.
  const tail = importTail(
    tf,
    model,
    block.key,
    scope === 'local' ? [view.source(block.weight)] : 'all',
    view.producer(block.linearOutput),
  );
  const classes = model.proto.graph!.output![0].type?.tensorType?.shape?.dim?.at(-1)?.dimValue;
  if (!Number.isInteger(label) || label < 0 || (classes && label >= Number(classes))) {
    throw new RuleditError(
      'bad-label',
      `label must be a class index between 0 and ${classes ? Number(classes) - 1 : 'the number of classes - 1'}, got ${label}`,
    );
  }
  say(
    `fine-tuning ${tail.trainable.size} tensors from ${block.name} (${scope}), ${optimizerName} lr ${lr}, ${steps} steps on ${backend}`,
  );

  // The tail's inputs on the transformed exemplars: constants for the whole training.
  const n = exemplars.length;
  const captured = await withTraces(options.traces, model, spec, options.threads, (traces) =>
    traces.block(block).readImages(exemplars.map((e) => e.transformed)),
  );
  const feeds = Object.fromEntries(
    tail.inputs.map((name) => [
      name,
      tf.tensor(captured.taps[name].data, captured.taps[name].dims),
    ]),
  );
  const target = tf.oneHot(tf.tensor1d(new Array(n).fill(label), 'int32'), captured.logits.dims[1]);
  const lossOf = () =>
    tf.losses.softmaxCrossEntropy(
      target,
      tail.apply(feeds),
    ) as import('@tensorflow/tfjs-core').Scalar;
  const lossBefore = tf.tidy(() => lossOf().dataSync()[0]);
  const optimizer = optimizerName === 'adam' ? tf.train.adam(lr) : tf.train.sgd(lr);
  const vars = [...tail.trainable.values()];
  let t = performance.now();
  const breathe = breather();
  for (let step = 1; step <= steps; step++) {
    await breathe();
    const l = optimizer.minimize(lossOf, true, vars);
    if (step === steps || performance.now() - t > 2000) {
      t = performance.now();
      const rate = step / ((t - start) / 1000);
      say(
        `step ${step}/${steps}: loss ${l!.dataSync()[0].toFixed(4)} (${rate.toFixed(1)} steps/s)`,
      );
    }
    l?.dispose();
  }
  const lossAfter = tf.tidy(() => lossOf().dataSync()[0]);
  const changes = new Map(
    [...tail.trainable].map(([name, v]) => [name, Float32Array.from(v.dataSync())]),
  );
  optimizer.dispose();
  tail.dispose();
  tf.dispose([...Object.values(feeds), target]);

  const method = `finetune-${scope}`;
  const edited = applyChanges(model, changes, {
    method,
    block: block.name,
    layerIndex: block.index,
    label,
    steps,
    lr,
    optimizer: optimizerName,
    backend,
    exemplars: exemplars.map((e) => e.hashes),
    loss: { before: lossBefore, after: lossAfter },
  });
  const report: FinetuneReport = {
    block: block.name,
    scope,
    label,
    lossBefore,
    lossAfter,
    tensors: changes.size,
    backend,
    seconds: (performance.now() - start) / 1000,
  };
  return { ...edited, report };
}
