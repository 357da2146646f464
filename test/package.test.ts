import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { before, describe, it } from 'node:test';

// The package as shipped: `npm pack`, installed into an empty project the way a user installs it,
// then used from plain Node ESM and from strict TypeScript. `npm test` builds dist/ first.
const run = promisify(execFile);
const root = resolve(import.meta.dirname, '..');
const tsc = join(root, 'node_modules/typescript/bin/tsc');
let project: string;

before(async () => {
  assert.ok(existsSync(join(root, 'dist/index.js')), 'dist/ is missing: run `npm run build`');
  const dir = await mkdtemp(join(tmpdir(), 'ruledit-package-'));
  const { stdout } = await run(
    'npm',
    ['pack', '--ignore-scripts', '--json', '--pack-destination', dir],
    {
      cwd: root,
    },
  );
  const [packed] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
  const shipped = packed.files.map((f) => f.path);
  for (const path of [
    'LICENSE',
    'dist/index.d.ts',
    'dist/web/index.html',
    'models/scenes/model.onnx',
  ])
    assert.ok(shipped.includes(path), `the tarball lacks ${path}`);
  for (const prefix of ['src/', 'test/', 'bench/', '.ci/', 'web/'])
    assert.ok(!shipped.some((p) => p.startsWith(prefix)), `the tarball carries ${prefix}`);
  project = join(dir, 'consumer');
  await run('mkdir', ['-p', project]);
  await writeFile(
    join(project, 'package.json'),
    JSON.stringify({ name: 'consumer', version: '1.0.0', type: 'module', private: true }),
  );
  // --ignore-scripts: onnxruntime-node's install script would download CUDA binaries (README).
  await run(
    'npm',
    [
      'install',
      '--prefer-offline',
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      join(dir, packed.filename),
    ],
    { cwd: project, maxBuffer: 1 << 24 },
  );
});

/** Run an .mjs file in the consumer project, optionally refusing to resolve some packages. */
async function node(source: string, refuse?: RegExp): Promise<string> {
  const file = join(project, `run-${Math.random().toString(36).slice(2)}.mjs`);
  await writeFile(file, source);
  const args = [file];
  if (refuse) {
    // A resolve hook that fails any import of a refused package: proof that it is never loaded.
    await writeFile(
      join(project, 'hooks.mjs'),
      `export async function resolve(s, c, next) {
        if (${refuse}.test(s)) throw new Error('refused import: ' + s);
        return next(s, c);
      }`,
    );
    await writeFile(
      join(project, 'refuse.mjs'),
      `import { register } from 'node:module'; register('./hooks.mjs', import.meta.url);`,
    );
    args.unshift('--import', join(project, 'refuse.mjs'));
  }
  const { stdout } = await run(process.execPath, args, { cwd: project, maxBuffer: 1 << 24 });
  return stdout;
}

const SERVER_AND_TOOLS = /^(fastify|@fastify\/|vite|playwright-core)(\/|$)/;

describe('the npm package', () => {
  it('runs an edit of the built-in model from plain Node ESM, loading no server or build tool', async () => {
    const out = await node(
      `import { loadClassifier, loadExemplar, openDataset, edit, evaluate, saveClassifier, loadClassifier as reload } from 'ruledit';
      import { BUILTIN_MODEL, writeScenes } from 'ruledit/synth';
      const c = await loadClassifier(BUILTIN_MODEL);
      await writeScenes('scenes', { perClass: 4, seed: 1, ground: 'road' });
      const ex = await loadExemplar('scenes/images/car-0.png', 'scenes/masks/road/car-0.png', { fill: 'white' }, c.spec);
      const data = await openDataset('scenes');
      const { model, report, record } = await edit(c, [ex], { statsData: data.items });
      await saveClassifier({ ...c, model }, 'edited.onnx');
      const back = await reload('edited.onnx');
      const acc = await evaluate(back, data);
      console.log(JSON.stringify({ block: report.block, method: record.method, labels: back.labels.length, top1: acc.top1, n: acc.n }));`,
      SERVER_AND_TOOLS,
    );
    const r = JSON.parse(out.trim().split('\n').at(-1)!);
    assert.equal(r.method, 'rewrite');
    assert.equal(r.labels, 10, 'the saved model carries its labels');
    assert.equal(r.n, 40);
    assert.ok(r.top1 > 50, `top-1 ${r.top1}% after the edit`);
    // The hook does refuse: the server's subpath needs fastify.
    await assert.rejects(
      node(`await import('ruledit/server');`, SERVER_AND_TOOLS),
      /refused import: fastify/,
    );
    // The protocol does not load a Redis client; the queue's subpath does.
    const QUEUE = /^(bullmq|ioredis)(\/|$)/;
    await node(`await import('ruledit/protocol');`, QUEUE);
    await assert.rejects(
      node(`await import('ruledit/queue');`, QUEUE),
      /refused import: (bullmq|ioredis)/,
    );
  });

  it('fine-tunes with the gradients it ships, without the TF.js umbrella package', async () => {
    const out = await node(
      `import { loadClassifier, loadExemplar, edit } from 'ruledit';
      import { BUILTIN_MODEL } from 'ruledit/synth';
      const c = await loadClassifier(BUILTIN_MODEL);
      const ex = await loadExemplar('scenes/images/car-0.png', 'scenes/masks/road/car-0.png', { fill: 'white' }, c.spec);
      const { report } = await edit(c, [ex], { method: 'finetune-local', label: 3, steps: 5, lr: 0.01, guard: false });
      console.log(JSON.stringify({ before: report.lossBefore, after: report.lossAfter }));`,
      /^@tensorflow\/tfjs(\/|$)/,
    );
    const r = JSON.parse(out.trim().split('\n').at(-1)!);
    assert.ok(r.after < r.before, `cross-entropy ${r.before} -> ${r.after}`);
  });

  it("exports a small core, and the CLI runs from the package's compiled JavaScript", async () => {
    const out = await node(
      `const m = await import('ruledit'); console.log(Object.keys(m).sort().join(' '));`,
    );
    const names = out.trim().split(' ');
    for (const name of [
      'loadClassifier',
      'saveClassifier',
      'edit',
      'evaluate',
      'revertLast',
      'METHODS',
    ])
      assert.ok(names.includes(name), `ruledit exports ${name}`);
    assert.ok(names.length <= 25, `the core exports ${names.length} values: ${names.join(', ')}`);
    assert.ok(!names.includes('createServer') && !names.includes('GraphBuilder'));
    const bin = join(project, 'node_modules/.bin/ruledit');
    const { stdout } = await run(bin, ['--version'], { cwd: project });
    assert.match(stdout, /^\d+\.\d+\.\d+/);
    const help = (await run(bin, ['edit', '--help'], { cwd: project })).stdout;
    assert.match(
      help,
      /--max-drop <x>.*\(default: 0\.25\)/s,
      'flags and defaults from the registry',
    );
  });

  for (const resolution of ['node16', 'bundler'] as const) {
    it(`type-checks a strict TypeScript consumer (moduleResolution ${resolution})`, async () => {
      const dir = join(project, `ts-${resolution}`);
      await run('mkdir', ['-p', dir]);
      await writeFile(
        join(dir, 'consumer.ts'),
        `import { loadClassifier, loadExemplar, edit, METHODS, type Classifier, type EditResult, type RewriteReport } from 'ruledit';
        import { runHarness, methodGrid } from 'ruledit/protocol';
        import { writeReport } from 'ruledit/report';
        import { BUILTIN_MODEL } from 'ruledit/synth';
        import { createServer } from 'ruledit/server';
        import { listBlocks } from 'ruledit/onnx';
        import { queueExecutor, startWorker } from 'ruledit/queue';
        const c: Classifier = await loadClassifier(BUILTIN_MODEL);
        const ex = await loadExemplar('a.png', 'm.png', { fill: 'white' }, c.spec);
        const out: EditResult<RewriteReport> = await edit(c, [ex], { rank: 2, guard: { maxDrop: 1 } });
        const flips: number | undefined = out.report.guard?.flipRate;
        const steps: number = METHODS['finetune-local'].options.steps.default;
        // @ts-expect-error: the rewrite has no optimizer (the check must catch it)
        await edit(c, [ex], { optimizer: 'sgd' });
        const executor = await queueExecutor('redis://127.0.0.1:6379/0');
        await runHarness(c, { testsets: [], methods: [methodGrid('rewrite')], clean: [], results: 'r.jsonl', executor });
        export const used = [flips, steps, runHarness, methodGrid, writeReport, createServer, listBlocks, startWorker];
        `,
      );
      const module = resolution === 'node16' ? 'node16' : 'esnext';
      await writeFile(
        join(dir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            target: 'ES2022',
            module,
            moduleResolution: resolution,
            strict: true,
            noEmit: true,
          },
          files: ['consumer.ts'],
        }),
      );
      // package.json "type": "module" of the project above applies: consumer.ts is ESM.
      await run(process.execPath, [tsc, '-p', dir], { cwd: dir }).catch((e) => {
        assert.fail(`tsc (${resolution}) failed:\n${e.stdout}${e.stderr}`);
      });
    });
  }
});
