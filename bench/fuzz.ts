// Thousands of mutants of the built-in model through inspect, predict and edit (the contract of
// test/fixtures/fuzz.ts: exit 0 with finite output, or exit 2 with one error line; never a trace,
// a crash, a hang or a changed input). Prints outcomes per kind of mutation and every breach with
// its seed and index, so `mutant(model, seed, index)` makes the file again.
// Usage: npx tsx bench/fuzz.ts [--count N] [--seed S] [--jobs J] [--timeout SECONDS (300: a mutant with a huge feature map edits slowly, with progress)]
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUILTIN_MODEL } from '../src/synth/builtin.ts';
import { writeScenes } from '../src/synth/write.ts';
import { fuzzCommands, mutant, runChecked } from '../test/fixtures/fuzz.ts';
import { flag } from './snow-problem.ts';

const count = Number(flag('--count', '2000'));
const seed = Number(flag('--seed', '1'));
const jobs = Number(flag('--jobs', String(availableParallelism())));
const timeoutMs = Number(flag('--timeout', '300')) * 1000;

const dir = await mkdtemp(join(tmpdir(), 'ruledit-fuzz-bench-'));
await writeScenes(join(dir, 'sc'), { perClass: 1, seed: 3, ground: 'road' });
const model = readFileSync(BUILTIN_MODEL);
const env = { RULEDIT_CACHE: join(dir, 'cache') };

/** Per kind of mutation: mutants, runs that succeeded, runs refused, breaches. */
const table = new Map<
  string,
  { mutants: number; ran: number; refused: number; slow: number; broken: number }
>();
const breaches: string[] = [];
let slowest = 0;
let next = 0;
let done = 0;
const start = performance.now();

async function worker(): Promise<void> {
  while (next < count) {
    const i = next++;
    const m = mutant(model, seed, i);
    const kind = m.what.startsWith('file cut') ? 'cut' : m.what.split(/[: ]/)[0];
    const row = table.get(kind) ?? { mutants: 0, ran: 0, refused: 0, slow: 0, broken: 0 };
    table.set(kind, row);
    row.mutants++;
    const file = join(dir, `m${i}.onnx`);
    const out = join(dir, `o${i}.onnx`);
    await writeFile(file, m.bytes);
    for (const [command, argv, written] of fuzzCommands(file, join(dir, 'sc'), out)) {
      const r = await runChecked(command, argv, env, [file], timeoutMs, written);
      slowest = Math.max(slowest, r.seconds);
      if (r.broken) {
        row.broken++;
        breaches.push(`seed ${seed} index ${i} (${m.what}) ${command}: ${r.broken}: ${r.stderr}`);
        console.error(`BREACH ${breaches.at(-1)}`);
      } else if (r.slow) row.slow++;
      else if (r.code === 0) row.ran++;
      else row.refused++;
    }
    await rm(file, { force: true });
    await rm(out, { force: true });
    if (++done % 50 === 0)
      console.error(
        `${done}/${count} mutants, ${breaches.length} breaches, ${((performance.now() - start) / 1000).toFixed(0)} s`,
      );
  }
}

await Promise.all(Array.from({ length: jobs }, worker));
const minutes = (performance.now() - start) / 60_000;
console.log(
  `fuzz: ${count} mutants (seed ${seed}) x inspect, predict, edit in ${minutes.toFixed(1)} min, ${jobs} at a time; slowest run ${slowest.toFixed(1)} s`,
);
console.log(
  '| mutation | mutants | runs exit 0 | runs exit 2 | stopped, still working | breaches |',
);
console.log('| --- | --- | --- | --- | --- | --- |');
for (const [kind, r] of [...table].sort())
  console.log(`| ${kind} | ${r.mutants} | ${r.ran} | ${r.refused} | ${r.slow} | ${r.broken} |`);
for (const b of breaches) console.log(`BREACH ${b}`);
await rm(dir, { recursive: true, force: true });
process.exitCode = breaches.length ? 1 : 0;
