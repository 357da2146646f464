import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { before, describe, it } from 'node:test';
import { colourImage, colourModel, PREPROCESS, writeColourWorld } from './fixtures/colours.ts';
import { serializeModel } from '../src/onnx/model.ts';
import { ruledit as run } from './fixtures/cli.ts';
import { mobilenetLike, tokenLike } from './fixtures/nets.ts';

const shared = resolve(import.meta.dirname, '../../shared');

const ruledit = (...args: string[]) =>
  run(args, { RULEDIT_CACHE: join(tmpdir(), 'ruledit-test-cache') });

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ruledit-cli-'));
  await writeFile(join(dir, 'model.onnx'), serializeModel(colourModel().proto));
  await writeFile(join(dir, 'preprocess.json'), JSON.stringify(PREPROCESS));
  await writeFile(join(dir, 'labels.txt'), 'red\ngreen\nblue\nyellow\ncyan\nmagenta\n');
  await writeFile(join(dir, 'mobile.onnx'), serializeModel(mobilenetLike().proto));
  await writeFile(join(dir, 'tokens.onnx'), serializeModel(tokenLike().proto));
  await writeFile(join(dir, 'red.png'), await colourImage(0, 1));
  await writeFile(join(dir, 'cyan.png'), await colourImage(4, 2));
});

describe('ruledit CLI', () => {
  it('--help lists every command, and a command --help lists options with defaults', async () => {
    const top = await ruledit('--help');
    assert.equal(top.code, 0);
    for (const cmd of ['demo', 'inspect', 'predict', 'eval'])
      assert.match(top.stdout, new RegExp(`\\b${cmd}\\b`));
    const ev = await ruledit('eval', '--help');
    assert.match(ev.stdout, /--batch <n>.*\(default: 8\)/s);
    assert.match(ev.stdout, /--threads <n>.*\(default: 0\)/s);
  });

  it('inspect prints the block table and JSON', async () => {
    const out = await ruledit('inspect', join(dir, 'mobile.onnx'));
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /5 linear layers, 4 editable blocks/);
    assert.match(out.stdout, /dw\s+Conv > Clip\(0,6\)\s+16x1x3x3.*no: depthwise convolution/);
    const json = JSON.parse((await ruledit('inspect', join(dir, 'mobile.onnx'), '--json')).stdout);
    const project = json.blocks.find((b: { name: string }) => b.name === 'project');
    assert.deepEqual(project.valueSpatial, [5, 5]);
    assert.equal(project.skip, 'c0.relu6');
    // A MatMul on [N, 17, 8] tokens says so, instead of '-' as for a dense layer.
    const tokens = await ruledit(
      'inspect',
      join(dir, 'tokens.onnx'),
      '--preprocess',
      join(dir, 'preprocess.json'),
      '--size',
      '16',
    );
    assert.equal(tokens.code, 0, tokens.stderr);
    assert.match(tokens.stdout, /fc1\s+MatMul > Add\(bias\) > Relu\s+12x8\s+17 tokens\s+yes/);
  });

  it('predict and eval use the preprocess.json and labels.txt next to the model', async () => {
    const pred = await ruledit(
      'predict',
      join(dir, 'model.onnx'),
      join(dir, 'red.png'),
      join(dir, 'cyan.png'),
      '--json',
      '--top',
      '2',
    );
    assert.equal(pred.code, 0, pred.stderr);
    const rows = JSON.parse(pred.stdout);
    assert.deepEqual(
      rows.map((r: { top: { name: string }[] }) => r.top[0].name),
      ['red', 'cyan'],
    );
    assert.equal(rows[0].top.length, 2);
    const demoDir = join(dir, 'colours');
    await writeColourWorld(demoDir, 5);
    const ev = await ruledit(
      'eval',
      join(demoDir, 'model.onnx'),
      join(demoDir, 'images'),
      '--json',
    );
    assert.equal(ev.code, 0, ev.stderr);
    const report = JSON.parse(ev.stdout);
    assert.equal(report.n, 30);
    assert.equal(report.top1, 100);
    assert.equal(report.perClass.length, 6);
  });

  describe('bad input: a clear error and exit code 2', () => {
    const cases: [string, () => Promise<string[]>, RegExp][] = [
      [
        'missing model file',
        async () => ['inspect', join(dir, 'nope.onnx')],
        /model file not found/,
      ],
      [
        'a non-ONNX file',
        async () => {
          await writeFile(join(dir, 'notes.onnx'), 'hello\n'.repeat(100));
          return ['inspect', join(dir, 'notes.onnx')];
        },
        /not .*ONNX model/,
      ],
      [
        'a truncated ONNX file',
        async () => {
          const bytes = await readFile(join(dir, 'mobile.onnx'));
          await writeFile(join(dir, 'cut.onnx'), bytes.subarray(0, bytes.length >> 1));
          return ['inspect', join(dir, 'cut.onnx')];
        },
        /truncated/,
      ],
      [
        'an unsupported block asked for by name',
        async () => ['inspect', join(dir, 'mobile.onnx'), '--layer', 'dw'],
        /'dw' is not an editable block: depthwise/,
      ],
      [
        'an unknown block name',
        async () => ['inspect', join(dir, 'mobile.onnx'), '--layer', 'conv99'],
        /no layer named 'conv99'/,
      ],
      [
        'a corrupt image',
        async () => {
          await writeFile(
            join(dir, 'broken.jpg'),
            Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(300, 7)]),
          );
          return ['predict', join(dir, 'model.onnx'), join(dir, 'broken.jpg')];
        },
        /broken\.jpg/,
      ],
      [
        'a preprocessing spec with wrong fields',
        async () => {
          await writeFile(
            join(dir, 'bad.json'),
            JSON.stringify({ ...PREPROCESS, std: [0.5, 0, 0.5] }),
          );
          return [
            'predict',
            join(dir, 'model.onnx'),
            join(dir, 'red.png'),
            '--preprocess',
            join(dir, 'bad.json'),
          ];
        },
        /std/,
      ],
      [
        'an unknown option',
        async () => ['eval', join(dir, 'model.onnx'), dir, '--bogus'],
        /unknown option/,
      ],
    ];
    for (const [what, args, message] of cases) {
      it(what, async () => {
        const out = await ruledit(...(await args()));
        assert.equal(out.code, 2, `exit code for ${what}: ${out.stderr}`);
        assert.match(out.stderr, message);
        assert.doesNotMatch(out.stderr, /    at /, 'no stack trace for a user error');
      });
    }
  });
});

describe(
  'the real MobileNetV2 of ../shared',
  { skip: !existsSync(shared) && '../shared absent: real-model checks skipped' },
  () => {
    const model = join(shared, 'models/mobilenetv2-imagenet/model.onnx');

    it('inspect lists its 36 editable blocks and 17 depthwise convs', async () => {
      const out = await ruledit('inspect', model, '--json');
      assert.equal(out.code, 0, out.stderr);
      const blocks = JSON.parse(out.stdout).blocks as {
        name: string;
        editable: boolean;
        reason?: string;
        chain: string[];
        valueSpatial: number[];
      }[];
      assert.equal(blocks.length, 53);
      assert.equal(blocks.filter((b) => b.editable).length, 36);
      assert.equal(blocks.filter((b) => /depthwise/.test(b.reason ?? '')).length, 17);
      const last = blocks.find((b) => b.name === 'conv61')!;
      assert.deepEqual(last.chain, ['Conv', 'Clip(0,6)']);
      assert.deepEqual(last.valueSpatial, [7, 7]);
    });

    it('eval on imagenet-sample gives top-1 within 1.5 points of 87.5%', async () => {
      const out = await ruledit('eval', model, join(shared, 'data/imagenet-sample'), '--json');
      assert.equal(out.code, 0, out.stderr);
      const report = JSON.parse(out.stdout);
      assert.equal(report.n, 1000);
      assert.ok(Math.abs(report.top1 - 87.5) <= 1.5, `top-1 ${report.top1}`);
      assert.ok(report.top5 > report.top1);
    });
  },
);
