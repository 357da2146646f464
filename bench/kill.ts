// Kill test: `edit`, `finetune` and `benchmark` on the built-in model, each killed (SIGTERM and
// kill -9) at a random moment, N runs each. After every kill the output is absent or complete;
// after the next full run no temporary file is left; the results file never loses or repeats a
// line. npx tsx bench/kill.ts [--runs 20]
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseModel } from '../src/onnx/model.ts';
import { BUILTIN_MODEL } from '../src/synth/builtin.ts';
import { flag } from './snow-problem.ts';

const bin = resolve(import.meta.dirname, '../bin/ruledit.js');
const W = await mkdtemp(join(tmpdir(), 'ruledit-kill-'));
const env = { ...process.env, RULEDIT_CACHE: join(W, 'cache') };
const R = (...args: string[]) =>
  execFileSync(process.execPath, [bin, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  }).toString();

R('synth', 'scenes', '--out', join(W, 'sc'), '--per-class', '4', '--seed', '4', '--ground', 'road');
R('synth', 'styles', '--out', join(W, 'styles'));
const index = JSON.parse(
  R('concepts', join(W, 'sc'), '--masks', join(W, 'sc', 'masks'), '--concepts', 'road', '--json'),
).index;
R(
  'testset',
  index,
  '--concept',
  'road',
  '--style',
  join(W, 'styles', 'snow'),
  '--n-train',
  '1',
  '--out',
  join(W, 'ts.json'),
);
const ex = [
  '--image',
  join(W, 'sc/images/car-0.png'),
  '--mask',
  join(W, 'sc/masks/road/car-0.png'),
  '--fill',
  'white',
];
const commands: Record<string, { args: string[]; out: string }> = {
  edit: {
    args: [
      'edit',
      BUILTIN_MODEL,
      ...ex,
      '--stats-data',
      join(W, 'sc'),
      '--out',
      join(W, 'e.onnx'),
      '--force',
    ],
    out: join(W, 'e.onnx'),
  },
  finetune: {
    args: [
      'finetune',
      BUILTIN_MODEL,
      ...ex,
      '--label',
      '0',
      '--steps',
      '100',
      '--out',
      join(W, 'f.onnx'),
      '--force',
    ],
    out: join(W, 'f.onnx'),
  },
  benchmark: {
    args: [
      'benchmark',
      BUILTIN_MODEL,
      '--testsets',
      join(W, 'ts.json'),
      '--methods',
      'rewrite',
      '--stats-data',
      join(W, 'sc'),
      '--clean',
      join(W, 'sc'),
      '--results',
      join(W, 'r.jsonl'),
    ],
    out: join(W, 'r.jsonl'),
  },
};

/** How long a full run takes: kills land anywhere inside it. */
const full = (args: string[]) => {
  const t = performance.now();
  execFileSync(process.execPath, [bin, ...args], { env, stdio: 'ignore' });
  return performance.now() - t;
};

const runs = Number(flag('--runs', '20'));
for (const [name, { args, out }] of Object.entries(commands)) {
  const ms = full(args);
  const tally = { absent: 0, complete: 0 };
  for (let i = 0; i < runs; i++) {
    const signal = i % 2 ? 'SIGKILL' : 'SIGTERM';
    execFileSync('rm', ['-f', out, `${out}.lock`]); // what exists afterwards is this run's
    const child = spawn(process.execPath, [bin, ...args], { env, stdio: 'ignore' });
    const exited = new Promise((r) => child.once('exit', r));
    // Uniform over the whole run and a little past it, so some kills land on the final write.
    await new Promise((r) => setTimeout(r, Math.random() * ms * 1.1));
    child.kill(signal);
    await exited;
    if (!existsSync(out)) tally.absent++;
    else {
      if (name === 'benchmark') {
        const text = readFileSync(out, 'utf8');
        const keys = text
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l).key);
        if (new Set(keys).size !== keys.length) throw new Error(`${name}: a line is repeated`);
      } else parseModel(readFileSync(out)); // throws on half a model
      tally.complete++;
    }
  }
  full(args); // the next run sweeps what the kills left, and (benchmark) resumes
  const left = readdirSync(W).filter((n) => n.includes('.tmp-') || n.endsWith('.lock'));
  if (left.length) throw new Error(`${name}: left behind ${left.join(', ')}`);
  if (name === 'benchmark') {
    const lines = readFileSync(out, 'utf8').split('\n').filter(Boolean);
    const cases = JSON.parse(readFileSync(join(W, 'ts.json'), 'utf8')).cases.length;
    if (lines.length !== cases)
      throw new Error(`${name}: ${lines.length} lines for ${cases} cases`);
  }
  console.log(
    `${name}: ${runs} kills (half SIGTERM, half kill -9) over a ${(ms / 1000).toFixed(1)} s run: output absent ${tally.absent}, complete ${tally.complete}, never partial; nothing left after the next run`,
  );
}
