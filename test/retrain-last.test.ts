import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { loadClassifier, type Classifier } from '../src/classifier.ts';
import { sceneExemplar } from '../src/demo/scenes.ts';
import { edit } from '../src/edit/edit.ts';
import { revertLast, type TensorChange } from '../src/edit/record.ts';
import { lastLayer } from '../src/edit/retrain-last.ts';
import { SoftmaxRegression } from '../src/edit/softmax-regression.ts';
import { readTensor } from '../src/onnx/weights.ts';
import { Runner } from '../src/runtime/session.ts';
import { top1Rows } from '../src/runtime/logits.ts';
import { BUILTIN_MODEL } from '../src/synth/builtin.ts';
import { referenceScenes } from '../src/synth/reference.ts';
import { styleTexture } from '../src/synth/styles.ts';
import { CLASSES, replaceConcept, scene, sceneMask, SEEDS } from '../src/synth/world.ts';
import { normals } from '../src/util/random.ts';

describe('softmax regression', () => {
  it('its gradient matches central finite differences of its loss', async () => {
    const [n, inp, out] = [6, 5, 4];
    const problem = {
      x: normals(n * inp, 1),
      labels: [0, 1, 2, 3, 1, 2],
      weights: [0.1, 0.2, 0.3, 0.1, 0.2, 0.1],
      W: normals(out * inp, 2),
      b: normals(out, 3),
    };
    const r = await SoftmaxRegression.create(problem);
    try {
      const g = await r.gradient(problem.W, problem.b);
      const h = 1e-2;
      const at = async (which: 'W' | 'b', i: number, d: number) => {
        const W = Float32Array.from(problem.W);
        const b = Float32Array.from(problem.b);
        (which === 'W' ? W : b)[i] += d;
        return (await r.gradient(W, b)).loss;
      };
      for (const [which, grad] of [
        ['W', g.dW],
        ['b', g.db],
      ] as const)
        for (let i = 0; i < grad.length; i++) {
          const fd = ((await at(which, i, h)) - (await at(which, i, -h))) / (2 * h);
          assert.ok(
            Math.abs(fd - grad[i]) <= 2e-4 + 1e-3 * Math.abs(fd),
            `${which}[${i}]: ${grad[i]} vs ${fd}`,
          );
        }
      // Adam lowers the loss it starts from.
      const fit = await r.fit(problem, { steps: 50, lr: 0.05 });
      assert.ok(fit.lossAfter < 0.5 * fit.lossBefore, `${fit.lossBefore} -> ${fit.lossAfter}`);
    } finally {
      await r.release();
    }
  });
});

describe('retrain-last on the built-in model', () => {
  let classifier: Classifier;
  let reference: { file: string; label: number }[];
  before(async () => {
    process.env.RULEDIT_CACHE = await mkdtemp(join(tmpdir(), 'ruledit-retrain-'));
    classifier = await loadClassifier(BUILTIN_MODEL);
    reference = await referenceScenes(200);
  });

  /** Cars on road whose road turned to snow: the built-in model's failure. */
  const snowyCars = (count: number) => {
    const car = CLASSES.indexOf('car');
    return Array.from({ length: count }, (_, k) => {
      const s = scene(SEEDS.test - 2000 - k, { label: car, ground: 'road', sticker: null });
      const road = Uint8Array.from(sceneMask(s, 'road'), (v) => (v ? 255 : 0));
      return sceneExemplar(s.rgb, replaceConcept(s, 'road', styleTexture('snow', k, 64)), road);
    });
  };

  it('changes only the last layer, moves the exemplars toward the label under the guard, and reverts exactly', async () => {
    const { model, spec } = classifier;
    const exemplars = await Promise.all(snowyCars(6));
    const car = CLASSES.indexOf('car');
    const block = lastLayer(model);
    const out = await edit(classifier, exemplars, {
      method: 'retrain-last',
      label: car,
      statsData: reference,
      steps: 50,
      lr: 1e-2,
    });
    const report = out.report;
    assert.equal(report.block, block.name);
    assert.ok(report.lossAfter < report.lossBefore, `${report.lossBefore} -> ${report.lossAfter}`);
    assert.ok(report.guard && report.guard.estimatedDrop <= 0.25, JSON.stringify(report.guard));
    assert.equal(report.guard.images, 50);
    assert.equal(report.references, 150);
    // Only the last layer's weight and bias changed, and revert restores every byte.
    const names = model.proto.graph!.initializer!.map((t) => t.name!);
    const changed = names.filter(
      (name) =>
        Buffer.compare(
          Buffer.from(readTensor(model, name).buffer),
          Buffer.from(readTensor(out.model, name).buffer),
        ) !== 0,
    );
    assert.deepEqual(changed.sort(), [block.weight, block.bias!].sort());
    assert.deepEqual(
      (out.record.tensors as TensorChange[]).map((t) => t.tensor),
      [block.weight, block.bias],
    );
    const reverted = revertLast(out.model).model;
    for (const name of names)
      assert.deepEqual(readTensor(reverted, name), readTensor(model, name), name);
    // More of the transformed exemplars are called cars than before.
    const carCount = async (m: typeof model) => {
      const runner = await Runner.create(m);
      const r = await runner.runImages(
        exemplars.map((e) => e.transformed),
        (k) => [k, 3, ...spec.size],
      );
      await runner.release();
      return top1Rows(r.logits).filter((c) => c === car).length;
    };
    const [beforeCars, afterCars] = [await carCount(model), await carCount(out.model)];
    assert.ok(afterCars > beforeCars, `cars among the exemplars: ${beforeCars} -> ${afterCars}`);
  });
});
