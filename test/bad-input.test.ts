// The reliability battery (issue 16), table-driven: each bad input or fault is run through the
// real CLI on the built-in model and must end with exit 2, a one-line message that says what is
// wrong, within a few seconds, and every input file byte-identical afterwards.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { GraphBuilder } from '../src/onnx/build.ts';
import { findBlock, listBlocks } from '../src/onnx/blocks.ts';
import { loadModel, parseModel } from '../src/onnx/model.ts';
import { saveModel } from '../src/onnx/save.ts';
import type { GraphProto } from '../src/onnx/proto.ts';
import { tensorToFloat32 } from '../src/onnx/tensor.ts';
import { BUILTIN_MODEL } from '../src/synth/builtin.ts';
import { writeScenes, writeStyles } from '../src/synth/write.ts';
import { ruledit } from './fixtures/cli.ts';

let dir: string;
let env: Record<string, string>;
const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const at = (...p: string[]) => join(dir, ...p);

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ruledit-bad-'));
  env = { RULEDIT_CACHE: at('cache') };
  await copyFile(BUILTIN_MODEL, at('m.onnx'));
  await writeScenes(at('sc'), { perClass: 2, seed: 4, ground: 'road' });
  await writeStyles(at('styles'), 64);
  // One NaN in the weight the edit would change.
  // (Written into the tensor directly: patchBlock itself refuses non-finite weights.)
  const model = await loadModel(BUILTIN_MODEL);
  const name = findBlock(listBlocks(model.proto.graph!), 'res2b').weight;
  const t = model.proto.graph!.initializer!.find((i) => i.name === name)!;
  const w = tensorToFloat32(t);
  w[17] = NaN;
  Object.assign(t, { rawData: new Uint8Array(w.buffer), floatData: [] });
  await saveModel({ ...model, path: undefined }, at('nan.onnx'));
  // A segmentation-shaped model: its output is a map, not [N, classes].
  const g = new GraphBuilder(13);
  g.input('image', ['N', 3, 64, 64]);
  g.node('Conv', ['image', g.init('w', [4, 3, 1, 1], new Float32Array(12).fill(0.1))], {}, 'map');
  g.output('map', ['N', 4, 64, 64]);
  await mkdir(at('seg'));
  await saveModel(g.build(), at('seg', 'model.onnx'));
  const {
    labels: _,
    output: __,
    ...spec
  } = JSON.parse(await readFile(resolve(BUILTIN_MODEL, '../preprocess.json'), 'utf8'));
  await writeFile(at('seg', 'preprocess.json'), JSON.stringify(spec));
  await writeFile(at('five.txt'), 'a\nb\nc\nd\ne\n');
  // A labels.csv naming class 12 of a 10-class model.
  await mkdir(at('beyond'));
  await copyFile(at('sc', 'images', 'car-0.png'), at('beyond', 'x.png'));
  await writeFile(at('beyond', 'labels.csv'), 'file,class\nx.png,12\n');
  // A mask whose brightest pixel is 1/255.
  const faint = Buffer.alloc(64 * 64, 0);
  faint.fill(1, 0, 2048);
  await sharp(faint, { raw: { width: 64, height: 64, channels: 1 } })
    .png()
    .toFile(at('faint.png'));
  await symlink(at('m.onnx'), at('link.onnx'));
  await mkdir(at('a-folder.onnx'));
  await writeFile(at('existing.onnx'), 'keep me');
  execFileSync('mkfifo', [at('fifo.png')]);
  // Issue 28's broken graphs, each one change to the built-in model.
  const mutant = async (name: string, change: (g: GraphProto) => void) => {
    const m = await loadModel(BUILTIN_MODEL);
    change(m.proto.graph!);
    await saveModel({ ...m, path: undefined }, at(name));
  };
  const side = (n: number) => (g: GraphProto) => {
    const dims = g.input![0].type!.tensorType!.shape!.dim!;
    dims[2] = dims[3] = { dimValue: n };
  };
  const setWeight = (g: GraphProto, name: string, f: (w: Float32Array) => void) => {
    const t = g.initializer!.find((i) => i.name === name)!;
    const w = tensorToFloat32(t);
    f(w);
    Object.assign(t, { rawData: new Uint8Array(w.buffer), floatData: [] });
  };
  await mutant('zero.onnx', side(0));
  await mutant('huge.onnx', side(1_000_000));
  await mutant('bnvar.onnx', (g) => setWeight(g, 'stem.bn.var', (w) => w.fill(-1)));
  // Finite weights whose activations overflow float32 two layers on.
  await mutant('overflow.onnx', (g) => setWeight(g, 'stem.bn.scale', (w) => w.fill(1e38)));
  await writeFile(at('big.json'), JSON.stringify({ ...spec, size: 1_000_000 }));
  // Found by bench/fuzz.ts: a stride that makes res2b's convolution 1x1, broadcast by its Add.
  await mutant('stride.onnx', (g) => {
    const a = g
      .node!.find((n) => n.name === 'res2a')!
      .attribute!.find((x) => x.name === 'strides')!;
    a.ints = [1000, 1000];
  });
  // Found by bench/fuzz.ts: embedded preprocessing that is not JSON (whose parser quotes the newline).
  const withMeta = await loadModel(BUILTIN_MODEL);
  withMeta.proto.metadataProps!.find((p) => p.key === 'ruledit.preprocess')!.value = 'a\nb';
  await saveModel({ ...withMeta, path: undefined }, at('badmeta.onnx'));
  await mkdir(at('escape'));
  await copyFile(at('sc', 'images', 'car-0.png'), at('escape', 'x.png'));
  await writeFile(at('escape', 'labels.csv'), 'file,class\nx.png,1\n../m.onnx,1\n');
  await mkdir(at('twice'));
  await copyFile(at('sc', 'images', 'car-0.png'), at('twice', 'x.png'));
  await writeFile(at('twice', 'labels.csv'), 'file,class\nx.png,1\n./x.png,2\n');
});

const IMAGE = () => at('sc', 'images', 'car-0.png');
const MASK = () => at('sc', 'masks', 'road', 'car-0.png');
const exemplar = () => ['--image', IMAGE(), '--mask', MASK(), '--fill', 'white'];
const edit = (model: string, out: string, ...more: string[]) => [
  'edit',
  model,
  ...exemplar(),
  '--stats-data',
  at('sc', 'images'),
  '--out',
  out,
  ...more,
];

/** An edit of the built-in model with one exemplar given as image and mask paths. */
const exemplarEdit = (image: string, mask: string, out: string, ...more: string[]) => [
  'edit',
  at('m.onnx'),
  '--image',
  image,
  '--mask',
  mask,
  '--fill',
  'white',
  '--out',
  out,
  ...more,
];

const finetune = (...more: string[]) => [
  'finetune',
  at('m.onnx'),
  ...exemplar(),
  '--label',
  '0',
  '--out',
  at('f.onnx'),
  ...more,
];

/** [what, argv, the message expected on stderr] */
const CASES: [string, () => string[], RegExp][] = [
  [
    'edit on a model with a NaN in the edited weight (it hung)',
    () => edit(at('nan.onnx'), at('o1.onnx')),
    /tensor 'res2b\.weight' holds NaN at index 17 \(1 non-finite values\)/,
  ],
  ['predict on that model (it printed NaN%)', () => ['predict', at('nan.onnx'), IMAGE()], /res2b/],
  ['eval on that model (it said top-1 10%)', () => ['eval', at('nan.onnx'), at('sc')], /res2b/],
  [
    '--out through a link to the input model, with --force',
    () => edit(at('link.onnx'), at('m.onnx'), '--force'),
    /refusing to overwrite the input file .*m\.onnx/,
  ],
  [
    '--out is the exemplar image, with --force',
    () => edit(at('m.onnx'), IMAGE(), '--force'),
    /refusing to overwrite the input file .*car-0\.png/,
  ],
  [
    '--out exists, without --force: refused before any work',
    () => edit(at('m.onnx'), at('existing.onnx')),
    /existing\.onnx already exists; pass --force/,
  ],
  [
    '--out is a folder, with --force',
    () => edit(at('m.onnx'), at('a-folder.onnx'), '--force'),
    /cannot write .*a-folder\.onnx: it is a folder/,
  ],
  [
    '--out in a folder that does not exist',
    () => edit(at('m.onnx'), at('nowhere', 'o.onnx')),
    /output folder .*nowhere does not exist/,
  ],
  [
    '--threads 100000 (it grew to gigabytes)',
    () => ['predict', at('m.onnx'), IMAGE(), '--threads', '100000'],
    /--threads must be a whole number from 0 \(one per core\) to \d+/,
  ],
  [
    'a segmentation model as a classifier',
    () => ['predict', at('seg', 'model.onnx'), IMAGE()],
    /output 'map' has shape \[N, 4, 64, 64\]; a classifier's logits are \[N, classes\]/,
  ],
  [
    'a labels file with the wrong number of names',
    () => ['predict', at('m.onnx'), IMAGE(), '--labels', at('five.txt')],
    /has 10 classes but its labels name 5/,
  ],
  [
    'a labels.csv class beyond the outputs',
    () => ['eval', at('m.onnx'), at('beyond')],
    /labelled class 12, but the model has 10 classes/,
  ],
  [
    'finetune --lr -1',
    () => finetune('--lr', '-1'),
    /finetune-local: --lr must be above 0, got -1/,
  ],
  ['finetune --lr 1e30', () => finetune('--lr', '1e30'), /--lr must be at most 10/],
  [
    'edit --whitening-floor -1',
    () => edit(at('m.onnx'), at('o2.onnx'), '--whitening-floor', '-1'),
    /--whitening-floor must be above 0/,
  ],
  [
    'edit --whitening-floor 2',
    () => edit(at('m.onnx'), at('o3.onnx'), '--whitening-floor', '2'),
    /--whitening-floor must be at most 1/,
  ],
  [
    'a mask whose brightest pixel is 1/255',
    () => exemplarEdit(IMAGE(), at('faint.png'), at('o4.onnx'), '--stats-data', at('sc', 'images')),
    /brightest pixel is 1\/255/,
  ],
  ['serve --port 70000', () => ['serve', '--port', '70000'], /a port is at most 65535/],
  // Issue 28: a FIFO blocked its reader forever, deaf to SIGTERM; /dev/zero grew without bound.
  [
    'a FIFO as the image to predict (it hung)',
    () => ['predict', at('m.onnx'), at('fifo.png')],
    /image .*fifo\.png is not a regular file \(a device, FIFO or socket\)/,
  ],
  [
    'a FIFO as the exemplar image (it hung)',
    () => exemplarEdit(at('fifo.png'), MASK(), at('o5.onnx')),
    /fifo\.png is not a regular file/,
  ],
  [
    'inspect /dev/zero (it read gigabytes)',
    () => ['inspect', '/dev/zero'],
    /model file \/dev\/zero is not a regular file/,
  ],
  [
    'a folder as the mask (it said "not found")',
    () => exemplarEdit(IMAGE(), at('sc'), at('o6.onnx')),
    /mask .*sc is a folder; give the path of a file/,
  ],
  [
    'a model whose input is declared 0x0 (it printed a trace)',
    () => ['inspect', at('zero.onnx')],
    /input 'image' is declared \[N, 3, 0, 0\]: an image side must be from 1 to 4096 pixels/,
  ],
  ['predict on it', () => ['predict', at('zero.onnx'), IMAGE()], /declared \[N, 3, 0, 0\]/],
  ['edit on it', () => edit(at('zero.onnx'), at('o7.onnx')), /declared \[N, 3, 0, 0\]/],
  [
    'inspect a model whose input is declared 1000000x1000000 (it printed a trace)',
    () => ['inspect', at('huge.onnx')],
    /declared \[N, 3, 1000000, 1000000\]: an image side must be from 1 to 4096/,
  ],
  [
    'predict with a BatchNormalization variance of -1 (it printed NaN% and exit 0)',
    () => ['predict', at('bnvar.onnx'), IMAGE()],
    /BatchNormalization 'stem\.bn' has variance -1 at channel 0: a variance below 0 makes its output NaN/,
  ],
  ['edit on it (it wrote a model)', () => edit(at('bnvar.onnx'), at('o8.onnx')), /variance -1/],
  [
    'predict on finite weights that overflow (it would print NaN%)',
    () => ['predict', at('overflow.onnx'), IMAGE()],
    /overflow\.onnx computes (-?Infinity|NaN) in '[^']+' \(image 1 of a batch of 1\)/,
  ],
  [
    'edit on them (it would solve on NaN)',
    () => edit(at('overflow.onnx'), at('o9.onnx')),
    /overflow\.onnx computes (-?Infinity|NaN) in/,
  ],
  [
    'embedded preprocessing that is not JSON (it printed a trace)',
    () => ['predict', at('badmeta.onnx'), IMAGE()],
    /embedded preprocessing, metadata 'ruledit\.preprocess'\) is not JSON .*: give --preprocess/,
  ],
  [
    "edit a block whose chain broadcasts its convolution's output (it printed an internal error)",
    () => edit(at('stride.onnx'), at('o11.onnx')),
    /block 'res2b': its convolution gives 1 positions but its chain .* gives 64/,
  ],
  [
    'a spec whose size is 1000000 (it blamed the image)',
    () => ['predict', at('m.onnx'), IMAGE(), '--preprocess', at('big.json')],
    /'size' must be a whole number from 1 to 4096/,
  ],
  [
    '--rank -1 (it said ">= 0", in two lines)',
    () => edit(at('m.onnx'), at('o10.onnx'), '--rank', '-1'),
    /^ruledit: error: rewrite: --rank must be at least 1, got -1$/,
  ],
  [
    'a missing option, in one line',
    () => ['edit', at('m.onnx'), '--image', IMAGE()],
    /^ruledit: error: required option '--mask <file>' not specified \(run with --help for usage\)$/,
  ],
  [
    'a labels.csv row outside its folder (it was read)',
    () => ['eval', at('m.onnx'), at('escape')],
    /labels\.csv line 3: '\.\.\/m\.onnx' is outside the data set's folder/,
  ],
  [
    'an image listed twice with two classes (it was counted twice)',
    () => ['eval', at('m.onnx'), at('twice')],
    /labels\.csv line 3: '\.\/x\.png' is listed again \(first on line 2, as class 1; here class 2\)/,
  ],
];

describe('bad input: exit 2, one line, nothing changed', () => {
  for (const [what, argv, message] of CASES) {
    it(what, async () => {
      const inputs = [at('m.onnx'), at('nan.onnx'), IMAGE(), MASK(), at('existing.onnx')];
      const before = inputs.map(sha);
      const start = performance.now();
      const r = await ruledit(argv(), env);
      const seconds = (performance.now() - start) / 1000;
      assert.equal(r.code, 2, `exit ${r.code}\n${r.stderr}`);
      // Progress may come first; the error is one line, the last.
      const errors = r.stderr.split('\n').filter((l) => /error/i.test(l));
      assert.equal(errors.length, 1, r.stderr);
      assert.equal(errors[0], r.stderr.trimEnd().split('\n').at(-1));
      assert.match(errors[0], message);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      assert.ok(seconds < 5, `answered in ${seconds.toFixed(1)} s`);
      assert.deepEqual(inputs.map(sha), before, 'every input is unchanged');
    });
  }

  it('serve on a port in use, or on an address that is not one, says so (it printed a stack trace)', async () => {
    const taken = createServer().listen(0, '127.0.0.1');
    await once(taken, 'listening');
    const port = String((taken.address() as AddressInfo).port);
    try {
      const busy = await ruledit(['serve', '--port', port], env);
      assert.equal(busy.code, 2, busy.stderr);
      assert.match(busy.stderr, new RegExp(`port ${port} is in use: choose another with --port`));
      const nowhere = await ruledit(['serve', '--port', '0', '--host', '999.1.1.1'], env);
      assert.equal(nowhere.code, 2, nowhere.stderr);
      assert.match(nowhere.stderr, /999\.1\.1\.1 is not an address/);
    } finally {
      taken.close();
    }
  });

  it('a tampered statistics cache is detected and recomputed, with a note', async () => {
    const args = [
      'stats',
      at('m.onnx'),
      '--layer',
      'res2b',
      '--data',
      at('sc', 'images'),
      '--json',
    ];
    // A cache of its own: the cases above leave statistics of other models in the shared one.
    const env = { RULEDIT_CACHE: at('stats-cache') };
    const first = await ruledit(args, env);
    assert.equal(first.code, 0, first.stderr);
    const folder = at('stats-cache', 'stats');
    const [file] = readdirSync(folder);
    const entry = JSON.parse(await readFile(join(folder, file), 'utf8'));
    const C = Buffer.from(entry.C, 'base64');
    for (const tamper of [
      (c: Buffer) => Buffer.alloc(c.length), // all zero
      (c: Buffer) => c.subarray(0, c.length / 2), // half of it
      (c: Buffer) => Buffer.from(new Float64Array(c.length / 8).fill(NaN).buffer), // NaN
    ]) {
      await writeFile(
        join(folder, file),
        JSON.stringify({ ...entry, C: tamper(C).toString('base64') }),
      );
      const again = await ruledit(args, env);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stderr, /does not match its checksum \(damaged or edited\): recomputing/);
      const summary = (out: string) => ({ ...JSON.parse(out), seconds: undefined });
      assert.deepEqual(summary(again.stdout), summary(first.stdout), 'the same statistics');
    }
    const clean = await ruledit(args, env);
    assert.doesNotMatch(clean.stderr, /recomputing/, 'the recomputed entry is trusted again');
  });

  it('a tampered transformed image or concept mask in the cache is detected and made again, with a note; --refresh remakes all', async () => {
    const args = [
      'discover',
      at('m.onnx'),
      at('sc'),
      '--masks',
      at('sc', 'masks'),
      '--concepts',
      'road',
      '--styles',
      at('styles', 'snow'),
      '--min-images',
      '1',
      '--json',
    ];
    const rows = (out: string) => JSON.parse(out).rows;
    const first = await ruledit(args, env);
    assert.equal(first.code, 0, first.stderr);
    assert.doesNotMatch(first.stderr, /warning/);
    const transformed = at('cache', 'transformed');
    const pngs = readdirSync(transformed).filter((f) => f.endsWith('.png'));
    const [victim, other] = [join(transformed, pngs[0]), join(transformed, pngs[1])];
    const kept = sha(victim);
    await copyFile(other, victim);
    const again = await ruledit(args, env);
    assert.equal(again.code, 0, again.stderr);
    assert.match(
      again.stderr,
      /cached transformed image .* does not match its checksum \(damaged or edited\): made again/,
    );
    assert.equal(sha(victim), kept, 'the image is made again as it was');
    assert.deepEqual(rows(again.stdout), rows(first.stdout));

    const [index] = readdirSync(at('cache', 'concepts'));
    const masks = at('cache', 'concepts', index, 'masks', 'road');
    const mask = join(
      masks,
      readdirSync(masks).find((f) => f.endsWith('.png'))!,
    );
    await writeFile(
      mask,
      await sharp(Buffer.alloc(64 * 64, 255), { raw: { width: 64, height: 64, channels: 1 } })
        .png()
        .toBuffer(),
    );
    const rebuilt = await ruledit(args, env);
    assert.equal(rebuilt.code, 0, rebuilt.stderr);
    assert.match(
      rebuilt.stderr,
      /cached concept index .* is missing, damaged or edited: rebuilding it/,
    );
    assert.deepEqual(rows(rebuilt.stdout), rows(first.stdout));

    const refreshed = await ruledit([...args, '--refresh'], env);
    assert.equal(refreshed.code, 0, refreshed.stderr);
    assert.doesNotMatch(refreshed.stderr, /warning/);
    assert.deepEqual(rows(refreshed.stdout), rows(first.stdout));
    const queued = await ruledit([...args, '--refresh', '--queue', 'redis://127.0.0.1:1/0'], env);
    assert.equal(queued.code, 2);
    assert.match(queued.stderr, /--refresh recomputes this machine's caches/);
  });

  it('an edit killed while it runs (SIGTERM or kill -9) leaves no partial output, and no temp file after the next run', async () => {
    const out = at('killed.onnx');
    for (const [i, signal] of (['SIGTERM', 'SIGKILL', 'SIGTERM', 'SIGKILL'] as const).entries()) {
      const child = spawn(
        process.execPath,
        [resolve(import.meta.dirname, '../bin/ruledit.js'), ...edit(at('m.onnx'), out, '--force')],
        { env: { ...process.env, ...env }, stdio: 'ignore' },
      );
      const exited = new Promise((r) => child.once('exit', r));
      await new Promise((r) => setTimeout(r, 600 + 500 * i));
      child.kill(signal);
      await exited;
      // Absent, or a complete model: never half a file under the real name.
      if (existsSync(out)) parseModel(await readFile(out));
    }
    // What kill -9 leaves when it lands inside the write: a temp file of a process now gone.
    await writeFile(`${out}.tmp-999999999-0badf00d`, 'half a model');
    const done = await ruledit(edit(at('m.onnx'), out, '--force'), env);
    assert.equal(done.code, 0, done.stderr);
    parseModel(await readFile(out));
    const left = readdirSync(dir).filter((n) => n.startsWith('killed.onnx.tmp-'));
    assert.deepEqual(left, [], 'the next write swept what kill -9 left');
  });
});

describe('file systems that refuse a write: one line, exit 2, nothing left behind', () => {
  // A read-only and a nearly full file system (tmpfs mounts) and a folder only root may write.
  const mounts: string[] = [];
  let why: string | false = false;
  before(async () => {
    try {
      for (const [name, opts] of [
        ['ro', 'ro'],
        ['full', 'size=256k'],
      ]) {
        await mkdir(at(name), { recursive: true });
        execFileSync('mount', ['-t', 'tmpfs', '-o', opts, 'tmpfs', at(name)], { stdio: 'ignore' });
        mounts.push(at(name));
      }
    } catch {
      why = 'mounting a tmpfs needs root with CAP_SYS_ADMIN: read-only and full-disk cases skipped';
    }
  });
  after(() => {
    for (const m of mounts) execFileSync('umount', [m]);
  });

  for (const [what, folder, message] of [
    [
      '--out on a read-only file system',
      'ro',
      /cannot write .*o\.onnx: the file system is read-only/,
    ],
    ['--out on a full disk', 'full', /cannot write .*o\.onnx: the disk is full/],
  ] as const) {
    it(what, async (t) => {
      if (why) return t.skip(why);
      const before = sha(at('m.onnx'));
      const r = await ruledit(edit(at('m.onnx'), at(folder, 'o.onnx')), env);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').at(-1)!.startsWith('ruledit: error:'), true);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      assert.deepEqual(readdirSync(at(folder)), [], 'no partial file or temp file left');
      assert.equal(sha(at('m.onnx')), before);
    });
  }

  it('a cache folder that cannot be written only warns: the edit is written', async (t) => {
    if (why) return t.skip(why);
    const r = await ruledit(edit(at('m.onnx'), at('uncached.onnx')), {
      RULEDIT_CACHE: at('ro', 'cache'),
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /the file system is read-only; the statistics are not cached/);
    assert.ok(existsSync(at('uncached.onnx')));
  });

  it('--out in a folder the user may not write: permission denied, before any work', async (t) => {
    if (process.getuid?.() !== 0 || !existsSync('/usr/sbin/runuser'))
      return t.skip('needs root and runuser to run the command as another user');
    await chmod(dir, 0o755); // mkdtemp's 0700 would keep the other user out of everything
    await mkdir(at('locked'), { mode: 0o555 });
    const started = performance.now();
    const r = await new Promise<{ code: number; stderr: string }>((done) => {
      const child = spawn('runuser', [
        '-u',
        'nobody',
        '--',
        process.execPath,
        resolve(import.meta.dirname, '../bin/ruledit.js'),
        ...edit(at('m.onnx'), at('locked', 'o.onnx')),
      ]);
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (code) => done({ code: code ?? -1, stderr }));
    });
    if (/Permission denied|EACCES/.test(r.stderr) && !/ruledit: error/.test(r.stderr))
      return t.skip(`user nobody cannot read the checkout: ${r.stderr.split('\n')[0]}`);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /cannot write .*locked\/o\.onnx: permission denied/);
    assert.ok(performance.now() - started < 15000, 'refused before the edit ran');
  });
});
