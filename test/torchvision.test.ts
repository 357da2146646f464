// Real exporter output (../shared/models/torchvision: torch.onnx.export defaults, opset 13, a
// fixed batch of 1, random weights): every command must batch it, and name its blocks as PyTorch does.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { loadClassifier } from '../src/classifier.ts';
import { openDataset } from '../src/data/dataset.ts';
import { evaluate } from '../src/eval/evaluate.ts';
import { findBlock, listBlocks, modulePath } from '../src/onnx/blocks.ts';
import { ruledit } from './fixtures/cli.ts';

const shared = resolve(import.meta.dirname, '../../shared');
const dir = join(shared, 'models/torchvision');
const skip = existsSync(dir) ? false : `needs ${dir} (the shared torchvision exports)`;
const images = join(shared, 'data/imagenet-sample');

describe('torchvision exports', { skip }, () => {
  it('run in batches although their batch is fixed at 1 (it crashed with ORT\'s "Expected: 1")', async () => {
    const c = await loadClassifier(join(dir, 'resnet18.onnx'), {
      preprocess: 'imagenet-torchvision',
    });
    const data = await openDataset(images);
    const some = { ...data, items: data.items.slice(0, 40) };
    const report = await evaluate(c, some, { batchSize: 16 });
    assert.equal(report.n, 40);
    const cli = await ruledit([
      'predict',
      join(dir, 'mobilenet_v3_small.onnx'),
      ...some.items.slice(0, 3).map((i) => i.file),
      '--preprocess',
      'imagenet-torchvision',
      '--json',
    ]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(JSON.parse(cli.stdout).length, 3);
  });

  it('names blocks by their PyTorch module paths', async () => {
    const c = await loadClassifier(join(dir, 'resnet18.onnx'), {
      preprocess: 'imagenet-torchvision',
    });
    const blocks = listBlocks(c.model.proto.graph!);
    assert.equal(findBlock(blocks, 'layer4.1.conv2').name, '/layer4/layer4.1/conv2/Conv');
    assert.deepEqual(
      blocks.slice(0, 3).map((b) => modulePath(b.name)),
      ['conv1', 'layer1.0.conv1', 'layer1.0.conv2'],
    );
    assert.equal(
      modulePath('/features/features.1/features.1.0/block/block.0/block.0.0/Conv'),
      'features.1.0.block.0.0',
    );
    const table = await ruledit(['inspect', join(dir, 'efficientnet_b0.onnx')]);
    assert.equal(table.code, 0, table.stderr);
    const width = Math.max(...table.stdout.split('\n').map((l) => l.length));
    assert.ok(width <= 120, `the inspect table is ${width} columns wide`);
  });
});
