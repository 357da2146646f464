import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import type { Exemplar } from '../src/concepts/exemplar.ts';
import { parsePreprocess } from '../src/data/preprocess.ts';
import { edit } from '../src/edit/edit.ts';
import { revertLast } from '../src/edit/record.ts';
import { predictFiles } from '../src/eval/predictions.ts';
import { Traces } from '../src/runtime/block-trace.ts';
import { TailPredictions } from '../src/eval/tail-predictions.ts';
import { gradEngine } from '../src/grad/engine.ts';
import { importTail } from '../src/grad/tail.ts';
import { listBlocks } from '../src/onnx/blocks.ts';
import { GraphBuilder } from '../src/onnx/build.ts';
import { loadModel, type OnnxModel } from '../src/onnx/model.ts';
import { readTensor } from '../src/onnx/weights.ts';
import { normals } from '../src/util/random.ts';
import { loadClassifier } from '../src/classifier.ts';
import { sceneExemplar } from '../src/demo/scenes.ts';
import { BUILTIN_MODEL } from '../src/synth/builtin.ts';
import { styleTexture } from '../src/synth/styles.ts';
import { CLASSES, replaceConcept, scene, sceneMask, SEEDS } from '../src/synth/world.ts';
import { mobilenetLike, resnetLike, vggLike } from './fixtures/nets.ts';
import { compareTail, relative } from './fixtures/tail.ts';

const shared = resolve(import.meta.dirname, '../../shared');

describe('ONNX tail in TF.js', () => {
  for (const [name, make, size] of [
    ['vgg-like', vggLike, 16],
    ['resnet-like', resnetLike, 12],
    ['mobilenet-like', mobilenetLike, 10],
  ] as const) {
    it(`${name}: the tail from every block's key matches ONNX Runtime (<= 1e-4 relative)`, async () => {
      const model = make();
      for (const block of listBlocks(model.proto.graph!)) {
        const err = await compareTail(model, block.key, size);
        assert.ok(err <= 1e-4, `${block.name}: ${err}`);
      }
    });
  }

  it(
    'the real MobileNetV2 tail from three depths matches ONNX Runtime',
    { skip: !existsSync(shared) && '../shared absent' },
    async () => {
      const model = await loadModel(join(shared, 'models/mobilenetv2-imagenet/model.onnx'));
      for (const start of ['conv60', 'add46', 'conv23']) {
        const err = await compareTail(model, start, 224);
        assert.ok(err <= 1e-4, `${start}: ${err}`);
      }
    },
  );

  it('gradients through the tail match central finite differences', async () => {
    const { tf } = await gradEngine();
    const model = resnetLike();
    const tail = importTail(tf, model, 'stem.relu', ['res.b.w', 'fc.w']);
    const feeds = { 'stem.relu': tf.tensor(normals(2 * 8 * 144, 6).map(Math.abs), [2, 8, 12, 12]) };
    const mix = tf.tensor(normals(12, 7), [2, 6]);
    const lossOf = () =>
      tf.sum(tf.mul(tail.apply(feeds), mix)) as import('@tensorflow/tfjs-core').Scalar;
    const { grads } = tf.variableGrads(lossOf);
    for (const name of ['res.b.w', 'fc.w']) {
      const v = tail.trainable.get(name)!;
      const g = grads[v.name].dataSync();
      const base = v.dataSync().slice();
      for (const i of [0, 7, 33, base.length - 1]) {
        const h = 1e-3;
        const at = (d: number) => {
          const w = base.slice();
          w[i] += d;
          v.assign(tf.tensor(w, v.shape));
          return tf.tidy(() => lossOf().dataSync()[0]);
        };
        const fd = (at(h) - at(-h)) / (2 * h);
        v.assign(tf.tensor(base, v.shape));
        assert.ok(
          Math.abs(fd - g[i]) <= 1e-3 * Math.max(1, Math.abs(fd)) + 2e-3,
          `${name}[${i}]: ${g[i]} vs ${fd}`,
        );
      }
    }
    tf.dispose(Object.values(grads));
    tail.dispose();
  });

  it('names an unsupported op', async () => {
    const { tf } = await gradEngine();
    const g = new GraphBuilder(13);
    g.input('x', ['N', 3, 4, 4]);
    const y = g.node('Conv', ['x', g.init('w', [2, 3, 1, 1], normals(6, 1))], {}, 'conv');
    g.node('Softmax', [g.node('Flatten', [y], {}, 'flat')], {}, 'probs');
    g.output('probs');
    assert.throws(() => importTail(tf, g.build(), 'x'), {
      code: 'unsupported-op',
      message: /'Softmax' \(node 'probs'\)/,
    });
  });
});

describe('fine-tuning baselines', () => {
  const spec = parsePreprocess({ size: 12, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] }, 'test');
  const exemplar = (seed: number): Exemplar => {
    const x = normals(3 * 144, seed);
    return {
      original: x,
      transformed: x.map((v, i) => (i % 144 < 40 ? 1 : v)),
      mask: new Float32Array(144).fill(1),
      size: [12, 12],
      hashes: { image: String(seed), mask: 'm', replacement: 'r' },
    };
  };

  it('local changes only the block weight; global changes every parameter after it; both revert exactly', async () => {
    const model = resnetLike();
    const before = new Map(
      model.proto.graph!.initializer!.map((t) => [t.name!, readTensor(model, t.name!)]),
    );
    for (const [method, expected] of [
      ['finetune-local', ['res.b.w']],
      ['finetune-global', ['res.b.w', 'res.b.b', 'down.w', 'down.b', 'fc.w', 'fc.b']],
    ] as const) {
      const out = await edit({ model, spec }, [exemplar(1), exemplar(2)], {
        method,
        label: 3,
        layer: 'res.b',
        steps: 30,
        lr: 0.05,
      });
      assert.ok(
        out.report.lossAfter < out.report.lossBefore,
        `${method}: ${out.report.lossBefore} -> ${out.report.lossAfter}`,
      );
      const changed = [...before]
        .filter(([name, data]) => relative(readTensor(out.model, name), data) > 0)
        .map(([n]) => n);
      assert.deepEqual(changed.sort(), [...expected].sort(), method);
      const reverted = revertLast(out.model).model;
      for (const [name, data] of before)
        assert.deepEqual(readTensor(reverted, name), data, `${method}: ${name} after revert`);
    }
  });

  it("global fine-tuning trains a residual unit's downsample conv after the edited layer, as published; the tail predictions see it", async () => {
    // stem -> [a -> relu -> b] + down(stem) -> relu -> pool -> fc: the exporter writes `down`
    // after `b`, on the skip path that does not read b's key.
    const g = new GraphBuilder(13);
    g.input('image', ['N', 3, 12, 12]);
    const w = (name: string, dims: number[], seed: number) =>
      g.init(
        name,
        dims,
        normals(
          dims.reduce((x, y) => x * y, 1),
          seed,
          0.3,
        ),
      );
    const conv = (x: string, name: string, dims: number[], seed: number, pads = [1, 1, 1, 1]) =>
      g.node(
        'Conv',
        [x, w(`${name}.w`, dims, seed), w(`${name}.b`, [dims[0]], seed + 1)],
        { pads },
        name,
      );
    const stem = g.node('Relu', [conv('image', 'stem', [6, 3, 3, 3], 1)], {}, 'stem.relu');
    const a = g.node('Relu', [conv(stem, 'a', [8, 6, 3, 3], 3)], {}, 'a.relu');
    const b = conv(a, 'b', [8, 8, 3, 3], 5);
    const down = conv(stem, 'down', [8, 6, 1, 1], 7, [0, 0, 0, 0]);
    const unit = g.node('Relu', [g.node('Add', [b, down], {}, 'add')], {}, 'unit');
    const pooled = g.node('Flatten', [g.node('GlobalAveragePool', [unit], {}, 'gap')], {}, 'flat');
    g.node('Gemm', [pooled, w('fc.w', [4, 8], 9), w('fc.b', [4], 10)], { transB: 1 }, 'fc');
    g.output('fc', ['N', 4]);
    const model = g.build();
    const before = new Map(
      model.proto.graph!.initializer!.map((t) => [t.name!, readTensor(model, t.name!)]),
    );
    const out = await edit({ model, spec }, [exemplar(1), exemplar(2)], {
      method: 'finetune-global',
      label: 2,
      layer: 'b',
      steps: 30,
      lr: 0.05,
    });
    const changed = [...before]
      .filter(([name, data]) => relative(readTensor(out.model, name), data) > 0)
      .map(([n]) => n);
    assert.deepEqual(changed.sort(), ['b.b', 'b.w', 'down.b', 'down.w', 'fc.b', 'fc.w']);
    // The harness scores edited models on the tail from the block: the downsample must be in it.
    const dir = await mkdtemp(join(tmpdir(), 'ruledit-down-'));
    const files = await Promise.all(
      [1, 2, 3, 4, 5, 6].map(async (seed) => {
        const file = join(dir, `${seed}.png`);
        const px = Buffer.from(
          normals(3 * 144, seed + 20).map((v) => Math.min(255, Math.max(0, 128 + 90 * v))),
        );
        await sharp(px, { raw: { width: 12, height: 12, channels: 3 } })
          .png()
          .toFile(file);
        return file;
      }),
    );
    const traces = new Traces(model, spec);
    const viaTail = await new TailPredictions(traces).predict(out.model, 'b', files);
    await traces.release();
    assert.ok(viaTail, 'the tail took the edited model');
    assert.deepEqual([...viaTail], [...(await predictFiles(out.model, files, spec))]);
  });

  it("global fine-tuning trains BatchNormalization's scale and bias, never its running statistics", async () => {
    const classifier = await loadClassifier(BUILTIN_MODEL);
    const car = scene(SEEDS.test + 7, { label: CLASSES.indexOf('car'), ground: 'road' });
    const mask = sceneMask(car, 'road');
    const snowy = replaceConcept(car, 'road', styleTexture('snow', 0, 64));
    const out = await edit(classifier, [sceneExemplar(car.rgb, snowy, mask)], {
      method: 'finetune-global',
      label: CLASSES.indexOf('car'),
      layer: 'res2a',
      steps: 5,
      lr: 0.05,
    });
    const bns = classifier.model.proto.graph!.node!.filter(
      (n) => n.opType === 'BatchNormalization',
    );
    const tensor = (m: OnnxModel, name: string) => readTensor(m, name);
    let trained = 0;
    for (const bn of bns) {
      const [, scale, bias, mean, variance] = bn.input!;
      for (const buffer of [mean, variance])
        assert.deepEqual(tensor(out.model, buffer), tensor(classifier.model, buffer), buffer);
      if (
        tensor(out.model, scale).some((v, i) => v !== tensor(classifier.model, scale)[i]) ||
        tensor(out.model, bias).some((v, i) => v !== tensor(classifier.model, bias)[i])
      )
        trained++;
    }
    assert.ok(trained >= 1, 'the scale and bias after the block are trained');
  });

  it('rejects a label outside the classes', async () => {
    await assert.rejects(
      edit({ model: resnetLike(), spec }, [exemplar(1)], {
        method: 'finetune-local',
        label: 6,
        layer: 'res.b',
      }),
      { code: 'bad-label' },
    );
  });
});
