import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ResultLine } from '../src/eval/results.ts';
import { loadModel } from '../src/onnx/model.ts';
import { ruledit } from './fixtures/cli.ts';

/**
 * The harness on BullMQ + Redis, end to end with the real executables: a redis-server on a free
 * port with its data in a temporary folder, `ruledit worker` processes and a `ruledit benchmark
 * --queue` coordinator over three road -> snow cases of the built-in model.
 */
const redisServer = spawnSync('redis-server', ['--version']).status === 0;
const skip = redisServer
  ? false
  : 'redis-server is not installed (Debian: apt-get install redis-server; .ci/run does it): the queue test is skipped';

const bin = resolve(import.meta.dirname, '../bin/ruledit.js');
const MODEL = resolve(import.meta.dirname, '../models/scenes/model.onnx');
let dir: string;
let url: string;
let redis: ChildProcess;
const procs: ChildProcess[] = [];

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

/** A ruledit process whose stderr is collected; `waitFor` resolves when it matches. */
function start(args: string[]) {
  const proc = spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, RULEDIT_CACHE: join(dir, 'cache') },
  });
  procs.push(proc);
  let log = '';
  let out = '';
  const waiting: [RegExp, () => void][] = [];
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => {
    log += d;
    for (const [re, r] of waiting) if (re.test(log)) r();
  });
  const exit = new Promise<{ code: number; stdout: string; stderr: string }>((r) =>
    proc.once('exit', (code) => r({ code: code ?? -1, stdout: out, stderr: log })),
  );
  return {
    proc,
    exit,
    log: () => log,
    waitFor: (re: RegExp) => new Promise<void>((r) => (re.test(log) ? r() : waiting.push([re, r]))),
  };
}
const startWorker = () => start(['worker', '--queue', url, '--lock-seconds', '3']);

const lines = (path: string): ResultLine[] =>
  readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
/** What a line measures (not when or how fast). */
const measured = (l: ResultLine) =>
  JSON.stringify([l.case, l.method, l.setting, l.scores, l.cleanDrop, l.candidates, l.edit]);

describe('distributed harness (BullMQ on redis-server)', { skip }, () => {
  const R = (args: string[]) => ruledit(args, { RULEDIT_CACHE: join(dir, 'cache') });
  let common: string[];
  let index: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ruledit-queue-'));
    const port = await freePort();
    url = `redis://127.0.0.1:${port}/0`;
    redis = spawn('redis-server', [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
    ]);
    await new Promise<void>((r, j) => {
      redis.stdout!.on('data', (d) => /Ready to accept connections/.test(String(d)) && r());
      redis.once('exit', (code) => j(new Error(`redis-server exited (${code})`)));
    });
    for (const [args, what] of [
      [['synth', 'styles', '--out', join(dir, 'styles')], 'styles'],
      [
        ['synth', 'scenes', '--out', join(dir, 'clean'), '--per-class', '4', '--seed', '2'],
        'clean',
      ],
      [['synth', 'scenes', '--out', join(dir, 'ref'), '--per-class', '8', '--seed', '3'], 'ref'],
      [['synth', 'scenes', '--out', join(dir, 'big'), '--per-class', '30', '--seed', '5'], 'big'],
      [
        [
          'synth',
          'scenes',
          '--out',
          join(dir, 'road'),
          '--per-class',
          '4',
          '--seed',
          '4',
          '--ground',
          'road',
        ],
        'road',
      ],
    ] as const) {
      const r = await R([...args]);
      assert.equal(r.code, 0, `${what}: ${r.stderr}`);
    }
    const concepts = await R([
      'concepts',
      join(dir, 'road'),
      '--masks',
      join(dir, 'road', 'masks'),
      '--concepts',
      'road',
      '--json',
    ]);
    assert.equal(concepts.code, 0, concepts.stderr);
    index = JSON.parse(concepts.stdout).index;
    const set = join(dir, 'road.json');
    const t = await R([
      'testset',
      index,
      '--concept',
      'road',
      '--style',
      join(dir, 'styles', 'snow'),
      '--n-train',
      '1',
      '--heldout',
      '1',
      '--out',
      set,
    ]);
    assert.equal(t.code, 0, t.stderr);
    const m = JSON.parse(readFileSync(set, 'utf8'));
    writeFileSync(set, JSON.stringify({ ...m, cases: m.cases.slice(0, 3) }));
    writeFileSync(
      join(dir, 'grid.json'),
      JSON.stringify({ rewrite: [{}, { rank: 2 }], 'finetune-local': [{ steps: 150, lr: 0.01 }] }),
    );
    common = [
      'benchmark',
      MODEL,
      '--testsets',
      set,
      '--methods',
      'rewrite,finetune-local',
      '--grid',
      join(dir, 'grid.json'),
      '--stats-data',
      join(dir, 'ref'),
      '--clean',
      join(dir, 'clean'),
      '--max-drop',
      '100',
    ];
  });

  after(() => {
    for (const p of procs) p.kill('SIGKILL');
    redis?.kill('SIGKILL');
  });

  it('two workers give the in-process lines; a worker killed mid-trial loses or doubles none; different bytes are refused', async () => {
    const here = await R([...common, '--results', join(dir, 'here.jsonl')]);
    assert.equal(here.code, 0, here.stderr);
    const expected = lines(join(dir, 'here.jsonl'));
    assert.equal(expected.length, 6);

    // Two workers; the first is killed (SIGKILL) as soon as it has started a trial.
    const [a, b] = [startWorker(), startWorker()];
    const coordinator = R([...common, '--results', join(dir, 'queue.jsonl'), '--queue', url]);
    await a.waitFor(/setting \d+\/\d+: started/);
    a.proc.kill('SIGKILL');
    const killed = /(case \S+ \S+ seed \d+ \S+ setting \d+\/\d+): started/.exec(a.log())![1];
    const queued = await coordinator;
    assert.equal(queued.code, 0, queued.stderr);
    assert.match(queued.stderr, /queue: 9\/9 trials done, \d+ running, 0 failed/);
    const got = lines(join(dir, 'queue.jsonl'));
    assert.deepEqual(
      got.map((l) => l.key).sort(),
      expected.map((l) => l.key).sort(),
      'every key exactly once',
    );
    const byKey = new Map(expected.map((l) => [l.key, measured(l)]));
    for (const l of got) assert.equal(measured(l), byKey.get(l.key), `${l.case} ${l.method}`);
    assert.ok(
      b.log().includes(`${killed}: done in`),
      `the killed worker's trial (${killed}) ran again on the other`,
    );
    // Key statistics as map-reduce: 300 images in two shards on the worker, the same bits as here.
    const stats = ['stats', MODEL, '--layer', 'res2b', '--data', join(dir, 'big'), '--json'];
    const sharded = await R([...stats, '--queue', url]);
    assert.equal(sharded.code, 0, sharded.stderr);
    assert.match(sharded.stderr, /300 images, 2 shard\(s\)/);
    const key = JSON.parse(sharded.stdout).cacheKey;
    const entry = join(dir, 'cache', 'stats', `${key}.json`);
    const fromQueue = readFileSync(entry, 'utf8');
    const local = await R([...stats, '--refresh']);
    assert.equal(local.code, 0, local.stderr);
    assert.equal(JSON.parse(local.stdout).cacheKey, key, 'the same cache key');
    assert.equal(readFileSync(entry, 'utf8'), fromQueue, 'the same statistics, bit for bit');

    // Rule discovery as map-reduce: one job per (concept, style), the same rows as here.
    const discover = [
      'discover',
      MODEL,
      join(dir, 'road'),
      '--index',
      index,
      '--concepts',
      'road',
      '--styles',
      `${join(dir, 'styles', 'snow')},${join(dir, 'styles', 'flowers')}`,
      '--json',
    ];
    const [near, far] = [await R(discover), await R([...discover, '--queue', url])];
    assert.equal(far.code, 0, far.stderr);
    assert.match(far.stderr, /queue: 2 \(concept, style\) units on/);
    assert.deepEqual(JSON.parse(far.stdout).rows, JSON.parse(near.stdout).rows);

    // A rerun finds every line and queues nothing.
    const again = await R([...common, '--results', join(dir, 'queue.jsonl'), '--queue', url]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /0 jobs run, 6 found finished/);

    const down = await R([
      ...common,
      '--results',
      join(dir, 'down.jsonl'),
      '--queue',
      'redis://127.0.0.1:1/0',
    ]);
    assert.equal(down.code, 2);
    assert.match(
      down.stderr,
      /cannot reach Redis at redis:\/\/127\.0\.0\.1:1\/0 .*start redis-server there, or run without --queue/,
    );

    // The coordinator's model changes on disk before a worker reads it: the trials are refused.
    b.proc.kill('SIGKILL');
    const copy = join(dir, 'copy.onnx');
    copyFileSync(MODEL, copy);
    const refused = start([
      ...common.slice(0, 1),
      copy,
      ...common.slice(2),
      '--methods',
      'rewrite',
      '--results',
      join(dir, 'refused.jsonl'),
      '--queue',
      url,
    ]);
    await refused.waitFor(/waiting for workers/);
    // Still a valid model: ir_version written a second time (the last one read wins).
    const { proto } = await loadModel(MODEL);
    writeFileSync(
      copy,
      Buffer.concat([readFileSync(MODEL), Buffer.from([0x08, Number(proto.irVersion)])]),
    );
    const c = startWorker();
    const r = await refused.exit;
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /\d+ of \d+ trials failed on the workers.*different bytes at .*copy\.onnx/,
    );
    assert.match(c.log(), /different bytes at .*copy\.onnx than the coordinator/);
  });
});
