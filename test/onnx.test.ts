import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { findBlock, listBlocks, type Block } from '../src/onnx/blocks.ts';
import { appendHistory, readHistory } from '../src/onnx/history.ts';
import { loadModel, serializeModel, type OnnxModel } from '../src/onnx/model.ts';
import { saveModel } from '../src/onnx/save.ts';
import { patchBlock, readBias, readWeight } from '../src/onnx/weights.ts';
import { capture, tensorShapes } from '../src/runtime/capture.ts';
import { Runner } from '../src/runtime/session.ts';
import { normals } from '../src/util/random.ts';
import { mobilenetLike, resnetLike, vggLike } from './fixtures/nets.ts';
import { blockForward, maxAbsDiff } from './fixtures/reference.ts';

const nets: [string, () => OnnxModel, number][] = [
  ['vgg-like', vggLike, 16],
  ['resnet-like', resnetLike, 12],
  ['mobilenet-like', mobilenetLike, 10],
];

const summary = (b: Block) =>
  `${b.name}:${b.chain.join('>')}:${b.weightShape.join('x')}${b.editable ? '' : ':X'}`;

describe('block discovery', () => {
  it('finds the blocks of a VGG-like net with explicit BN, through Identity/Constant/Dropout', () => {
    const blocks = listBlocks(vggLike().proto.graph!);
    assert.deepEqual(blocks.map(summary), [
      'conv1:Conv>BatchNormalization>Relu>MaxPool:8x3x3x3',
      'conv2:Conv>BatchNormalization>Relu>MaxPool:16x8x3x3',
      'fc1:Gemm>Relu:12x256',
      'fc2:Gemm:5x12',
    ]);
    assert.equal(blocks[0].key, 'image');
    // A stage's end: the value is after the MaxPool, as in the published VGG edit.
    assert.equal(blocks[0].value, 'pool1');
    assert.equal(blocks[0].pool?.input, 'relu1');
    assert.equal(blocks[0].batchNorm?.epsilon.toFixed(6), '0.001000');
    assert.equal(blocks[1].bias, undefined);
    assert.equal(blocks[3].storage, 'in-out');
    assert.equal(blocks[3].key, 'drop');
  });

  it('finds Conv -> Add -> Relu with its skip operand in a ResNet-like net', () => {
    const blocks = listBlocks(resnetLike().proto.graph!);
    assert.deepEqual(blocks.map(summary), [
      'stem:Conv>Relu:8x3x3x3',
      'res.a:Conv>Relu:8x8x3x3',
      'res.b:Conv>Add>Relu:8x8x3x3',
      'down:Conv>Relu:12x8x3x3',
      'fc:Gemm:6x12',
    ]);
    const res = blocks[2];
    assert.equal(res.skip, 'stem.relu');
    assert.equal(res.preActivation, 'res.add');
    assert.equal(res.value, 'res.relu');
  });

  it('lists the depthwise conv of an inverted residual as not editable, with the reason', () => {
    const blocks = listBlocks(mobilenetLike().proto.graph!);
    assert.deepEqual(blocks.map(summary), [
      'c0:Conv>Clip(0,6):8x3x3x3',
      'expand:Conv>Clip(0,6):16x8x1x1',
      'dw:Conv>Clip(0,6):16x1x3x3:X',
      'project:Conv>Add:8x16x1x1',
      'dense:MatMul>Add(bias):4x8',
    ]);
    assert.match(blocks[2].reason!, /depthwise convolution \(group = 16\)/);
    assert.deepEqual(blocks[3].activation, { kind: 'none' });
    assert.equal(blocks[3].skip, 'c0.relu6');
    assert.equal(blocks[4].bias, 'dense.b');
  });

  it('finds a block by name or index and refuses a non-editable one by name', () => {
    const blocks = listBlocks(mobilenetLike().proto.graph!);
    assert.equal(findBlock(blocks, 'project').index, 3);
    assert.equal(findBlock(blocks, '1').name, 'expand');
    assert.throws(() => findBlock(blocks, 'dw'), { code: 'not-editable', message: /depthwise/ });
    assert.equal(findBlock(blocks, 'dw', false).name, 'dw');
    assert.throws(() => findBlock(blocks, 'nope'), {
      code: 'no-block',
      message: /Editable blocks: c0, expand/,
    });
  });
});

describe('taps', () => {
  for (const [name, make, size] of nets) {
    it(`${name}: every block's tapped value equals the block computed from its tapped key`, async () => {
      const model = make();
      const blocks = listBlocks(model.proto.graph!);
      const taps = blocks.flatMap((b) => [b.key, b.value, ...(b.skip ? [b.skip] : [])]);
      const runner = await Runner.create(model, { taps, threads: 1 });
      const dims = [2, 3, size, size];
      const input = normals(
        dims.reduce((a, b) => a * b),
        7,
      );
      const out = await runner.run(input, dims);
      for (const b of blocks) {
        const key = b.key === 'image' ? { data: input, dims } : out.taps[b.key];
        const expected = blockForward(model, b, key, b.skip ? out.taps[b.skip] : undefined);
        assert.deepEqual(out.taps[b.value].dims, expected.dims, b.name);
        const diff = maxAbsDiff(out.taps[b.value].data, expected.data);
        assert.ok(diff < 1e-4, `${b.name}: max abs diff ${diff}`);
      }
      await runner.release();
    });
  }
});

describe('patching and saving', () => {
  it('changes exactly the patched block; every other tensor is bit-identical', async () => {
    for (const [name, make, size] of nets) {
      const model = make();
      const blocks = listBlocks(model.proto.graph!).filter((b) => b.editable);
      const block = blocks[blocks.length - 2];
      const w = readWeight(model, block);
      const delta = normals(w.length, 11, 0.05);
      const patched = patchBlock(model, block, { weight: w.map((v, i) => v + delta[i]) });
      assert.deepEqual(
        readWeight(patched, block),
        w.map((v, i) => v + delta[i]),
        name,
      );
      const before = new Map(model.proto.graph!.initializer!.map((t) => [t.name, t]));
      for (const t of patched.proto.graph!.initializer!) {
        if (t.name === block.weight) continue;
        assert.deepEqual(t.rawData, before.get(t.name)!.rawData, `${name}: ${t.name} changed`);
      }
      // The patched model's block output is what the reference gives with the new weight.
      const dims = [1, 3, size, size];
      const input = normals(
        dims.reduce((a, b) => a * b),
        3,
      );
      const taps = [block.key, block.value, ...(block.skip ? [block.skip] : [])];
      const out = await (await Runner.create(patched, { taps, threads: 1 })).run(input, dims);
      const expected = blockForward(
        patched,
        block,
        out.taps[block.key],
        block.skip ? out.taps[block.skip] : undefined,
      );
      assert.ok(maxAbsDiff(out.taps[block.value].data, expected.data) < 1e-4, name);
      const original = await (await Runner.create(model, { taps, threads: 1 })).run(input, dims);
      assert.ok(
        maxAbsDiff(original.taps[block.value].data, out.taps[block.value].data) > 1e-3,
        `${name}: patch had no effect`,
      );
      // Upstream of the block nothing moved: its key is bit-identical.
      assert.deepEqual(out.taps[block.key].data, original.taps[block.key].data);
    }
  });

  it('patches a weight held in a Constant node and adds a bias where there was none', async () => {
    const model = vggLike();
    const block = findBlock(listBlocks(model.proto.graph!), 'conv2');
    const bias = Float32Array.from({ length: 16 }, (_, i) => i / 10);
    const patched = patchBlock(model, block, {
      weight: readWeight(model, block).map((v) => -v),
      bias,
    });
    const after = findBlock(listBlocks(patched.proto.graph!), 'conv2');
    assert.deepEqual(
      readWeight(patched, after),
      readWeight(model, block).map((v) => -v),
    );
    assert.deepEqual(readBias(patched, after), bias);
    await Runner.create(patched);
  });

  it('refuses to patch a non-editable block or write non-finite weights', () => {
    const model = mobilenetLike();
    const blocks = listBlocks(model.proto.graph!);
    assert.throws(() => patchBlock(model, blocks[2], { weight: new Float32Array(144) }), {
      code: 'not-editable',
    });
    const w = readWeight(model, blocks[1]);
    w[3] = NaN;
    assert.throws(() => patchBlock(model, blocks[1], { weight: w }), { code: 'not-finite' });
  });

  it('a save with no change reproduces the file bytes and the outputs bit-identically', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ruledit-'));
    const src = join(dir, 'in.onnx');
    await writeFile(src, serializeModel(resnetLike().proto));
    const model = await loadModel(src);
    await saveModel(model, join(dir, 'out.onnx'));
    assert.deepEqual(await readFile(join(dir, 'out.onnx')), await readFile(src));
    const input = normals(2 * 3 * 12 * 12, 5);
    const a = await (await Runner.create(model)).run(input, [2, 3, 12, 12]);
    const b = await (
      await Runner.create(await loadModel(join(dir, 'out.onnx')))
    ).run(input, [2, 3, 12, 12]);
    assert.deepEqual(a.logits.data, b.logits.data);
    await assert.rejects(saveModel(model, join(dir, 'out.onnx')), { code: 'exists' });
    await assert.rejects(saveModel(model, src, { force: true }), { code: 'same-as-input' });
    await saveModel(model, join(dir, 'out.onnx'), { force: true });
  });

  it('keeps an appendable edit history in metadata_props that survives a save', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ruledit-'));
    let model = mobilenetLike();
    model.proto.metadataProps = [{ key: 'author', value: 'test' }];
    assert.deepEqual(readHistory(model), []);
    model = appendHistory(model, {
      method: 'test',
      time: 't0',
      ruleditVersion: '0',
      block: 'expand',
    });
    model = appendHistory(model, {
      method: 'test',
      time: 't1',
      ruleditVersion: '0',
      block: 'project',
    });
    await saveModel(model, join(dir, 'h.onnx'));
    const loaded = await loadModel(join(dir, 'h.onnx'));
    assert.deepEqual(
      readHistory(loaded).map((r) => r.block),
      ['expand', 'project'],
    );
    assert.equal(loaded.proto.metadataProps!.find((p) => p.key === 'author')?.value, 'test');
  });
});

describe('loading', () => {
  it('gives typed errors for a missing, foreign or truncated file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ruledit-'));
    await assert.rejects(loadModel(join(dir, 'missing.onnx')), { code: 'not-found' });
    await writeFile(join(dir, 'text.onnx'), 'this is not a model\n'.repeat(20));
    await assert.rejects(loadModel(join(dir, 'text.onnx')), { code: 'not-onnx' });
    const bytes = serializeModel(vggLike().proto);
    await writeFile(join(dir, 'cut.onnx'), bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    await assert.rejects(loadModel(join(dir, 'cut.onnx')), {
      code: 'not-onnx',
      message: /truncated/,
    });
    await assert.rejects(loadModel(dir), { code: 'not-a-file', message: /folder/ });
  });

  it('reads weights kept in an external data file next to the model', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ruledit-'));
    const model = resnetLike();
    const inline = await (await Runner.create(model)).run(normals(432, 1), [1, 3, 12, 12]);
    // Move every initializer's bytes into weights.bin, as exporters do for large models.
    const chunks: Uint8Array[] = [];
    let offset = 0;
    for (const t of model.proto.graph!.initializer!) {
      const raw = t.rawData!;
      chunks.push(raw);
      t.externalData = [
        { key: 'location', value: 'weights.bin' },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(raw.length) },
      ];
      t.dataLocation = 1;
      t.rawData = new Uint8Array();
      offset += raw.length;
    }
    await writeFile(join(dir, 'weights.bin'), Buffer.concat(chunks));
    await writeFile(join(dir, 'ext.onnx'), serializeModel(model.proto));
    const loaded = await loadModel(join(dir, 'ext.onnx'));
    const out = await (await Runner.create(loaded)).run(normals(432, 1), [1, 3, 12, 12]);
    assert.deepEqual(out.logits.data, inline.logits.data);
    await writeFile(join(dir, 'weights.bin'), Buffer.concat(chunks).subarray(0, 100));
    await assert.rejects(loadModel(join(dir, 'ext.onnx')), { code: 'bad-external-data' });
  });
});

describe('capture', () => {
  it('streams batches and returns the same taps as one run over everything', async () => {
    const model = resnetLike();
    const block = findBlock(listBlocks(model.proto.graph!), 'res.b');
    const dims = [5, 3, 12, 12];
    const all = normals(
      dims.reduce((a, b) => a * b),
      9,
    );
    const per = 3 * 12 * 12;
    async function* stream() {
      for (const [start, n] of [
        [0, 2],
        [2, 2],
        [4, 1],
      ]) {
        yield {
          items: [start, n],
          data: all.slice(start * per, (start + n) * per),
          dims: [n, 3, 12, 12],
        };
      }
    }
    const seen: number[] = [];
    const keys: number[] = [];
    for await (const out of capture(model, [block.key], stream(), { threads: 1 })) {
      seen.push(out.items[1]);
      keys.push(...out.taps[block.key].data);
      assert.equal(out.logits.dims[0], out.items[1]);
    }
    assert.deepEqual(seen, [2, 2, 1]);
    const whole = await (await Runner.create(model, { taps: [block.key] })).run(all, dims);
    assert.ok(maxAbsDiff(keys, whole.taps[block.key].data) < 1e-6);
  });

  it('reads tensor shapes for an input size', async () => {
    const model = mobilenetLike();
    const shapes = await tensorShapes(model, ['c0.relu6', 'dense.bias'], [1, 3, 10, 10]);
    assert.deepEqual(shapes, { 'c0.relu6': [1, 8, 5, 5], 'dense.bias': [1, 4] });
  });
});
