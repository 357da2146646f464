// Real exporter output (../shared/models/torchvision: torch.onnx.export defaults, opset 13, a
// fixed batch of 1, random weights): every command must batch it, and name its blocks as PyTorch does.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { loadClassifier } from '../src/classifier.ts';
import { openDataset } from '../src/data/dataset.ts';
import { evaluate } from '../src/eval/evaluate.ts';
import { loadExemplars } from '../src/concepts/exemplar.ts';
import { rewrite } from '../src/edit/rewrite.ts';
import { keyStatistics } from '../src/edit/stats.ts';
import { findBlock, listBlocks, modulePath } from '../src/onnx/blocks.ts';
import { readWeight } from '../src/onnx/weights.ts';
import { ruledit } from './fixtures/cli.ts';
import { compareTail } from './fixtures/tail.ts';

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

  it('recognizes their blocks: residual units, hardswish and SiLU; squeeze-and-excitation convs are not editable', async () => {
    const blocksOf = async (file: string) =>
      listBlocks(
        (await loadClassifier(join(dir, file), { preprocess: 'imagenet-torchvision' })).model.proto
          .graph!,
      );
    const resnet = await blocksOf('resnet18.onnx');
    for (const unit of ['layer1.0.conv2', 'layer3.1.conv2', 'layer4.0.downsample.0'])
      assert.deepEqual(findBlock(resnet, unit).chain, ['Conv', 'Add', 'Relu'], unit);
    assert.ok(resnet.every((b) => b.editable));

    const mobile = await blocksOf('mobilenet_v3_small.onnx');
    const stem = findBlock(mobile, 'features.0.0');
    const act = stem.activation;
    assert.ok(act.kind === 'hardswish' && Math.abs(act.alpha - 1 / 6) < 1e-7 && act.beta === 0.5);
    // The value is x * HardSigmoid(x), after the nonlinearity.
    assert.match(stem.value, /features\.0\.2\/Mul_output_0$/);
    const efficient = await blocksOf('efficientnet_b0.onnx');
    assert.deepEqual(findBlock(efficient, 'features.2.1.block.0.0').activation, { kind: 'silu' });
    for (const [blocks, count] of [
      [mobile, 9],
      [efficient, 16],
    ] as const) {
      const squeeze = blocks.filter((b) => /\.fc[12]$/.test(modulePath(b.name)));
      assert.equal(squeeze.length, 2 * count);
      for (const b of squeeze) {
        assert.equal(b.editable, false, b.name);
        assert.match(b.reason!, /^squeeze-and-excitation branch/);
      }
      // Nothing else is refused but depthwise convolutions.
      for (const b of blocks.filter((b) => !b.editable && !squeeze.includes(b)))
        assert.match(b.reason!, /^depthwise/, b.name);
      assert.throws(() => findBlock(blocks, modulePath(squeeze[0].name)), /squeeze-and-excitation/);
    }
  });

  it('the TF.js tail from three depths of each matches ONNX Runtime (<= 1e-4 relative)', async () => {
    for (const file of ['resnet18.onnx', 'mobilenet_v3_small.onnx', 'efficientnet_b0.onnx']) {
      const { model } = await loadClassifier(join(dir, file), {
        preprocess: 'imagenet-torchvision',
      });
      const editable = listBlocks(model.proto.graph!).filter((b) => b.editable);
      for (const at of [0.25, 0.5, 0.9]) {
        const block = editable[Math.floor(at * (editable.length - 1))];
        const err = await compareTail(model, block.key, 224);
        assert.ok(err <= 1e-4, `${file} from ${modulePath(block.name)}: ${err}`);
      }
    }
  });

  it('an edit of a hardswish and of a SiLU block moves the weight only along span(d); every other tensor is bit-identical', async () => {
    const street = join(shared, 'data/exemplars/street-road');
    const style = join(shared, 'data/styles/snowy_ground');
    const data = await openDataset(images);
    for (const [file, layer] of [
      ['mobilenet_v3_small.onnx', 'features.4.block.0.0'],
      ['efficientnet_b0.onnx', 'features.3.0.block.0.0'],
    ]) {
      const { model, spec } = await loadClassifier(join(dir, file), {
        preprocess: 'imagenet-torchvision',
      });
      const block = findBlock(listBlocks(model.proto.graph!), layer);
      assert.notEqual(block.activation.kind, 'none');
      const stats = await keyStatistics(model, block, data.items.slice(0, 24), spec, {
        cacheDir: await mkdtemp(join(tmpdir(), 'ruledit-torchvision-')),
      });
      const exemplars = await loadExemplars(
        join(street, 'image.png'),
        join(street, 'road_mask.png'),
        { style, variants: 1 },
        spec,
      );
      const {
        model: edited,
        record,
        report,
      } = await rewrite(model, exemplars.slice(0, 2), {
        spec,
        stats,
        layer,
        guard: false,
      });
      assert.ok(
        report.lossAfter < report.lossBefore,
        `${file}: ${report.lossBefore} -> ${report.lossAfter}`,
      );
      // dW[o, :, offset] lies in span(d) for every output channel and kernel offset.
      const d = record.direction as number[];
      const [before, after] = [readWeight(model, block), readWeight(edited, block)];
      const cin = block.weightShape[1];
      const offsets = before.length / block.weightShape[0] / cin;
      let off = 0;
      let total = 0;
      for (let o = 0; o < block.weightShape[0]; o++)
        for (let u = 0; u < offsets; u++) {
          const dw = Array.from({ length: cin }, (_, c) => {
            const i = (o * cin + c) * offsets + u;
            return after[i] - before[i];
          });
          const along = dw.reduce((acc, x, c) => acc + x * d[c], 0);
          dw.forEach((x, c) => {
            off = Math.max(off, Math.abs(x - along * d[c]));
            total = Math.max(total, Math.abs(x));
          });
        }
      assert.ok(total > 0, `${file}: the weight did not move`);
      assert.ok(
        off <= 1e-6 * Math.max(1, total) + 1e-7,
        `${file}: ${off} off span(d) (change ${total})`,
      );
      const kept = new Map(model.proto.graph!.initializer!.map((t) => [t.name, t.rawData]));
      for (const t of edited.proto.graph!.initializer!)
        if (t.name !== block.weight)
          assert.deepEqual(t.rawData, kept.get(t.name), `${file}: ${t.name}`);
    }
  });

  it('every editing command runs on an export with a fixed batch of 1, at the default batch size', async () => {
    const work = await mkdtemp(join(tmpdir(), 'ruledit-torchvision-cli-'));
    const data = join(work, 'data');
    await mkdir(data);
    const some = (await readdir(images)).filter((f) => /\.(jpe?g|png)$/i.test(f)).slice(0, 40);
    await Promise.all(some.map((f) => symlink(join(images, f), join(data, f))));
    const labels = (await readFile(join(images, 'labels.csv'), 'utf8')).split('\n');
    const kept = labels.filter((line) => some.includes(line.split(',')[0]));
    await writeFile(join(data, 'labels.csv'), [labels[0], ...kept].join('\n') + '\n');
    const env = { RULEDIT_CACHE: join(work, 'cache') };
    const model = join(dir, 'mobilenet_v3_small.onnx');
    const street = join(shared, 'data/exemplars/street-road');
    const exemplar = [
      '--image',
      join(street, 'image.png'),
      '--mask',
      join(street, 'road_mask.png'),
      '--texture',
      join(
        shared,
        'data/styles/snowy_ground',
        (await readdir(join(shared, 'data/styles/snowy_ground')))[0],
      ),
      '--preprocess',
      'imagenet-torchvision',
    ];
    const layer = ['--layer', 'features.9.block.0.0'];
    for (const args of [
      ['stats', model, ...layer, '--data', data, '--preprocess', 'imagenet-torchvision'],
      [
        'edit',
        model,
        ...exemplar,
        ...layer,
        '--stats-data',
        data,
        '--out',
        join(work, 'edited.onnx'),
      ],
      [
        'finetune',
        model,
        ...exemplar,
        ...layer,
        '--label',
        '1',
        '--steps',
        '3',
        '--out',
        join(work, 'tuned.onnx'),
      ],
      [
        'match',
        model,
        ...exemplar,
        ...layer,
        '--stats-data',
        data,
        '--data',
        data,
        '--report',
        join(work, 'match'),
        '--json',
      ],
    ]) {
      const out = await ruledit(args, env);
      assert.equal(out.code, 0, `${args[0]}: ${out.stderr}`);
    }
    const scored = await ruledit(['eval', join(work, 'edited.onnx'), data, '--json'], env);
    assert.equal(scored.code, 0, scored.stderr);
    assert.equal(JSON.parse(scored.stdout).n, 40);
  });
});
