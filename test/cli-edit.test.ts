import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import sharp from 'sharp';
import { loadModel } from '../src/onnx/model.ts';
import { readTensor } from '../src/onnx/weights.ts';
import { ruledit as run } from './fixtures/cli.ts';
import { writeColourWorld } from './fixtures/colours.ts';

const ruledit = (...args: string[]) => run(args, { RULEDIT_CACHE: join(dir, 'cache') });

let dir: string;
let demo: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ruledit-cli-edit-'));
  demo = join(dir, 'demo');
  await writeColourWorld(demo, 4);
  // A red patch on grey: the mask covers the patch's left half.
  const px = Buffer.alloc(32 * 32 * 3, 128);
  const mask = Buffer.alloc(32 * 32, 0);
  for (let y = 8; y < 24; y++)
    for (let x = 8; x < 24; x++) {
      px.set([230, 20, 20], (y * 32 + x) * 3);
      if (x < 16) mask[y * 32 + x] = 255;
    }
  await writeFile(
    join(dir, 'x.png'),
    await sharp(px, { raw: { width: 32, height: 32, channels: 3 } })
      .png()
      .toBuffer(),
  );
  await writeFile(
    join(dir, 'm.png'),
    await sharp(mask, { raw: { width: 32, height: 32, channels: 1 } })
      .png()
      .toBuffer(),
  );
  await writeFile(
    join(dir, 'empty.png'),
    await sharp(Buffer.alloc(32 * 32), { raw: { width: 32, height: 32, channels: 1 } })
      .png()
      .toBuffer(),
  );
  await writeFile(
    join(dir, 'wide.png'),
    await sharp(Buffer.alloc(64 * 32, 255), { raw: { width: 64, height: 32, channels: 1 } })
      .png()
      .toBuffer(),
  );
  await writeFile(
    join(dir, 'big.png'),
    await sharp(Buffer.alloc(64 * 64 * 3, 90), { raw: { width: 64, height: 64, channels: 3 } })
      .png()
      .toBuffer(),
  );
});

describe('ruledit edit, history, revert', () => {
  /** The exemplar every edit here uses, with a blue fill for the baselines. */
  const exemplar = () => ['--image', join(dir, 'x.png'), '--mask', join(dir, 'm.png')];
  const blue = () => [...exemplar(), '--fill', 'blue'];
  /** The exemplar and reference images of the guarded edits. */
  const common = () => [...exemplar(), '--stats-data', join(demo, 'images')];

  it('--validate tries block x rank x strength under the guard and keeps the best within budget', async () => {
    const out = await ruledit(
      'edit',
      join(demo, 'model.onnx'),
      ...common(),
      '--fill',
      'blue',
      '--layer',
      'score',
      '--validate',
      join(demo, 'images'),
      '--max-drop',
      '100',
      '--out',
      join(dir, 'validated.onnx'),
    );
    assert.equal(out.code, 0, out.stderr);
    // 3 ranks x 2 strengths for the one block given; each row has the guard's figures or a refusal.
    const rows = out.stdout.split('\n').filter((l) => /^score\s/.test(l));
    assert.equal(rows.length, 6, out.stdout);
    assert.match(
      out.stdout,
      /chosen: score rank \d strength [\d.]+: validation top-1 [\d.]+ -> [\d.]+%/,
    );
    assert.match(
      out.stdout,
      /guard: estimated clean drop [\d.]+ points \(budget 100; .*\), \d+\/\d+ held-out images change top-1/,
    );
    const history = await ruledit('history', join(dir, 'validated.onnx'), '--json');
    const [record] = JSON.parse(history.stdout);
    assert.ok(record.strength > 0 && record.strength <= 1);
    assert.ok(record.guard.images > 0);
  });

  it('edits, records the edit, and reverts it to the original predictions', async () => {
    const model = join(demo, 'model.onnx');
    const edit = await ruledit(
      'edit',
      model,
      ...common(),
      '--fill',
      'blue',
      '--layer',
      'score',
      '--out',
      join(dir, 'edited.onnx'),
      '--json',
    );
    assert.equal(edit.code, 0, edit.stderr);
    const report = JSON.parse(edit.stdout);
    assert.equal(report.block, 'score');
    assert.ok(report.lossAfter < report.lossBefore, `${report.lossBefore} -> ${report.lossAfter}`);
    assert.match(edit.stderr, /direction: rank 1/);
    const history = await ruledit('history', join(dir, 'edited.onnx'));
    assert.match(history.stdout, /0\s+rewrite\s+score\s+1\s+[\d.]+ -> [\d.]+.*in force/);
    const again = await ruledit(
      'edit',
      model,
      ...common(),
      '--fill',
      'blue',
      '--out',
      join(dir, 'edited.onnx'),
    );
    assert.equal(again.code, 2);
    assert.match(again.stderr, /already exists; pass --force/);
    const revert = await ruledit(
      'revert',
      join(dir, 'edited.onnx'),
      '--out',
      join(dir, 'reverted.onnx'),
    );
    assert.equal(revert.code, 0, revert.stderr);
    // The edited model carries its preprocessing: predict works without files next to it.
    const before = await ruledit('predict', model, join(dir, 'x.png'), '--json');
    const after = await ruledit(
      'predict',
      join(dir, 'reverted.onnx'),
      join(dir, 'x.png'),
      '--json',
    );
    assert.equal(after.code, 0, after.stderr);
    assert.deepEqual(JSON.parse(after.stdout)[0].top, JSON.parse(before.stdout)[0].top);
  });

  it('finetune trains toward a label, records it, and rejects a label outside the classes', async () => {
    const model = join(demo, 'model.onnx');
    const args = [...blue(), '--layer', 'score'];
    const out = await ruledit(
      'finetune',
      model,
      ...args,
      '--label',
      '2',
      '--steps',
      '20',
      '--lr',
      '0.01',
      '--out',
      join(dir, 'ft.onnx'),
      '--json',
    );
    assert.equal(out.code, 0, out.stderr);
    const report = JSON.parse(out.stdout);
    assert.equal(report.scope, 'local');
    assert.ok(report.lossAfter < report.lossBefore, `${report.lossBefore} -> ${report.lossAfter}`);
    assert.match((await ruledit('history', join(dir, 'ft.onnx'))).stdout, /finetune-local\s+score/);
    const bad = await ruledit(
      'finetune',
      model,
      ...args,
      '--label',
      '99',
      '--out',
      join(dir, 'ft2.onnx'),
    );
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /label must be a class index between 0 and 5/);
  });

  it('retrain retrains the last layer under the guard, records it, and reverts exactly', async () => {
    const model = join(demo, 'model.onnx');
    const args = [...blue(), '--stats-data', join(demo, 'images'), '--label', '2'];
    const out = await ruledit(
      'retrain',
      model,
      ...args,
      '--lr',
      '0.01',
      '--max-drop',
      '100',
      '--out',
      join(dir, 'rl.onnx'),
      '--json',
    );
    assert.equal(out.code, 0, out.stderr);
    const report = JSON.parse(out.stdout);
    assert.ok(report.lossAfter < report.lossBefore, `${report.lossBefore} -> ${report.lossAfter}`);
    assert.equal(report.guard.images, 6, 'every 4th of the 24 reference images');
    assert.match((await ruledit('history', join(dir, 'rl.onnx'))).stdout, /retrain-last\s+logits/);
    const back = await ruledit('revert', join(dir, 'rl.onnx'), '--out', join(dir, 'rl-back.onnx'));
    assert.equal(back.code, 0, back.stderr);
    const [a, b] = [await loadModel(model), await loadModel(join(dir, 'rl-back.onnx'))];
    for (const t of a.proto.graph!.initializer!)
      assert.deepEqual(readTensor(b, t.name!), readTensor(a, t.name!), t.name!);
    // The method has no block to choose: the flag that would be ignored does not exist.
    const layer = await ruledit(
      'retrain',
      model,
      ...args,
      '--layer',
      'score',
      '--out',
      join(dir, 'rl3.onnx'),
    );
    assert.equal(layer.code, 2);
    assert.match(layer.stderr, /unknown option '--layer'/);
  });

  describe('bad input: a clear error and exit code 2', () => {
    const cases: [string, () => string[], RegExp][] = [
      ['an empty mask', () => ['--mask', join(dir, 'empty.png')], /empty\.png is empty/],
      ['a mask of the wrong size', () => ['--mask', join(dir, 'wide.png')], /wide\.png.*64x32/],
      [
        'a modified image of another size',
        () => ['--mask', join(dir, 'm.png'), '--modified', join(dir, 'big.png')],
        /same size/,
      ],
      [
        'a block that does not exist',
        () => ['--mask', join(dir, 'm.png'), '--fill', 'red', '--layer', 'conv99'],
        /no layer named 'conv99'/,
      ],
      [
        'a rank larger than the masked positions',
        () => ['--mask', join(dir, 'm.png'), '--fill', 'red', '--layer', 'logits', '--rank', '2'],
        /rank 2 is larger than the 1 masked positions/,
      ],
      [
        'no replacement given',
        () => ['--mask', join(dir, 'm.png')],
        /exactly one of --texture, --style, --fill or --modified/,
      ],
      [
        'no statistics data',
        () => ['--mask', join(dir, 'm.png'), '--fill', 'red', '--no-stats'],
        /stats-data|unknown option/,
      ],
    ];
    for (const [what, extra, message] of cases) {
      it(what, async () => {
        const args = extra();
        const base = [
          'edit',
          join(demo, 'model.onnx'),
          '--image',
          join(dir, 'x.png'),
          '--out',
          join(dir, `bad-${what.length}.onnx`),
        ];
        const withData = args.includes('--no-stats')
          ? args.filter((a) => a !== '--no-stats')
          : [...args, '--stats-data', join(demo, 'images')];
        const hasReplacement =
          withData.some((a) => ['--fill', '--modified', '--texture'].includes(a)) ||
          what === 'no replacement given';
        const out = await ruledit(
          ...base,
          ...withData,
          ...(hasReplacement ? [] : ['--fill', 'red']),
        );
        assert.equal(out.code, 2, `${what}: ${out.stderr}`);
        assert.match(out.stderr, message);
        assert.doesNotMatch(out.stderr, /    at /);
      });
    }
  });
});
