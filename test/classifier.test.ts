import assert from 'node:assert/strict';
import { copyFile, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadClassifier, saveClassifier } from '../src/classifier.ts';
import { GraphBuilder } from '../src/onnx/build.ts';
import { saveModel } from '../src/onnx/save.ts';
import { BUILTIN_MODEL } from '../src/synth/builtin.ts';
import { CLASSES } from '../src/synth/world.ts';

describe('a classifier: model, preprocessing, labels', () => {
  it('takes them given, else embedded, else beside the model; saving embeds both', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ruledit-classifier-'));
    const model = join(dir, 'model.onnx');
    await copyFile(BUILTIN_MODEL, model);
    // A preprocess.json beside that disagrees with the embedded one: the embedded spec wins.
    await writeFile(join(dir, 'preprocess.json'), JSON.stringify({ size: 64, mean: [0, 0, 0] }));
    const embedded = await loadClassifier(model);
    assert.deepEqual(embedded.spec.mean, [0.5, 0.5, 0.5]);
    assert.deepEqual(embedded.labels, [...CLASSES]);
    // Given wins over both; a preset is sized by the model's static input (64, not 224).
    const given = await loadClassifier(model, { preprocess: join(dir, 'preprocess.json') });
    assert.deepEqual(given.spec.mean, [0, 0, 0]);
    const preset = await loadClassifier(model, { preprocess: 'imagenet-torchvision' });
    assert.deepEqual(preset.spec.size, [64, 64]);
    assert.deepEqual(preset.spec.mean, [0.485, 0.456, 0.406]);
    assert.equal(preset.spec.cropFraction, 224 / 256);
    // Saved with its assets, a copy runs anywhere: nothing beside it is needed.
    const alone = join(await mkdtemp(join(tmpdir(), 'ruledit-classifier-')), 'copy.onnx');
    await saveClassifier({ ...given, labels: CLASSES.map((c) => c.toUpperCase()) }, alone);
    const back = await loadClassifier(alone);
    assert.deepEqual(back.spec, given.spec);
    assert.equal(back.labels![0], 'CAR');
  });

  it('without any preprocessing, says how to give one; a preset fits an NHWC model', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ruledit-classifier-'));
    const g = new GraphBuilder(13);
    g.input('image', [1, 299, 299, 3]);
    g.node('ReduceMean', ['image'], { axes: [1, 2], keepdims: 0 }, 'logits');
    g.output('logits', [1, 3]);
    await saveModel(g.build(), join(dir, 'm.onnx'));
    await assert.rejects(
      loadClassifier(join(dir, 'm.onnx')),
      /give `preprocess` \(a preprocess\.json or a preset: imagenet-torchvision, inception\)/,
    );
    const c = await loadClassifier(join(dir, 'm.onnx'), { preprocess: 'inception' });
    assert.deepEqual([c.spec.layout, c.spec.size], ['NHWC', [299, 299]]);
  });
});
