// The CLI compiled (dist/, what the package ships) vs from sources through tsx (development):
// `ruledit --version`, `--help` and `predict` on the built-in model, interleaved, medians
// compared; and the compiled start against bare `node` (target: --version and --help within
// 0.15 s of it, issue 27).
// npm run build && npx tsx bench/cli-start.ts [--rounds 7]
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { writeScenes } from '../src/synth/write.ts';
import { BUILTIN_MODEL } from '../src/synth/builtin.ts';
import { flag } from './snow-problem.ts';

const root = resolve(import.meta.dirname, '..');
if (!existsSync(join(root, 'dist/cli/main.js'))) throw new Error('run `npm run build` first');
const scenes = await mkdtemp(join(tmpdir(), 'ruledit-bench-cli-'));
await writeScenes(scenes, { perClass: 2, seed: 5 });
const images = ['car-0', 'boat-1', 'cow-0'].map((n) => join(scenes, 'images', `${n}.png`));

const entries = {
  compiled: [join(root, 'dist/cli/main.js')],
  tsx: ['--import', 'tsx', join(root, 'src/cli/main.ts')],
};
const bin = join(root, 'bin/ruledit.js');
const commands = {
  '--version': ['--version'],
  '--help': ['--help'],
  predict: ['predict', BUILTIN_MODEL, ...images],
};
const time = (args: string[]) => {
  const t = performance.now();
  execFileSync(process.execPath, args, { cwd: root, stdio: 'pipe' });
  return (performance.now() - t) / 1000;
};
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

const rounds = Number(flag('--rounds', '7'));
const bare: number[] = [];
const started: Record<string, number[]> = { '--version': [], '--help': [] };
for (let r = 0; r < rounds; r++) {
  bare.push(time(['-e', '0']));
  for (const name of Object.keys(started))
    started[name].push(time([bin, ...commands[name as '--help']]));
}
for (const [name, t] of Object.entries(started))
  console.log(
    `ruledit ${name} (bin/ruledit.js, compiled): ${median(t).toFixed(3)} s, bare node ${median(bare).toFixed(3)} s: +${(median(t) - median(bare)).toFixed(3)} s (target +0.15), ratio ${(median(t) / median(bare)).toFixed(2)}x`,
  );
for (const [name, args] of Object.entries(commands)) {
  const t: Record<string, number[]> = { compiled: [], tsx: [] };
  for (let r = 0; r < rounds; r++)
    for (const [how, entry] of Object.entries(entries)) t[how].push(time([...entry, ...args]));
  const [c, x] = [median(t.compiled), median(t.tsx)];
  console.log(
    `ruledit ${name}: compiled ${c.toFixed(3)} s, tsx ${x.toFixed(3)} s (medians of ${rounds}); tsx / compiled = ${(x / c).toFixed(2)}x`,
  );
}
