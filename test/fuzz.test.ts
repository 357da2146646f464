// Issue 28's fuzz test: mutants of the built-in model (fixed seed) through inspect, predict and
// edit, each keeping the contract of test/fixtures/fuzz.ts. bench/fuzz.ts runs thousands.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { BUILTIN_MODEL } from '../src/synth/builtin.ts';
import { writeScenes } from '../src/synth/write.ts';
import { fuzzCommands, mutant, runChecked, type Outcome } from './fixtures/fuzz.ts';

const SEED = 28;
const MUTANTS = 30;

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ruledit-fuzz-'));
  await writeScenes(join(dir, 'sc'), { perClass: 1, seed: 3, ground: 'road' });
});

describe('fuzz: mutants of the built-in model', () => {
  it(`${MUTANTS} mutants x inspect, predict, edit: exit 0 or one error line, never a trace or a hang`, async () => {
    const model = readFileSync(BUILTIN_MODEL);
    const broken: string[] = [];
    const counts = { 0: 0, 2: 0 } as Record<number, number>;
    for (let i = 0; i < MUTANTS; i++) {
      const m = mutant(model, SEED, i);
      const file = join(dir, `m${i}.onnx`);
      await writeFile(file, m.bytes);
      for (const [command, args, out] of fuzzCommands(
        file,
        join(dir, 'sc'),
        join(dir, `o${i}.onnx`),
      )) {
        const r: Outcome = await runChecked(
          command,
          args,
          { RULEDIT_CACHE: join(dir, 'cache') },
          [file],
          30_000,
          out,
        );
        counts[r.code ?? -1] = (counts[r.code ?? -1] ?? 0) + 1;
        if (r.broken) broken.push(`mutant ${i} (${m.what}) ${command}: ${r.broken}: ${r.stderr}`);
      }
    }
    console.log(`fuzz: ${MUTANTS} mutants x 3 commands: ${counts[0]} ran, ${counts[2]} refused`);
    assert.deepEqual(broken, []);
    assert.ok(counts[0] > 0 && counts[2] > 0, 'some mutants run and some are refused');
  });
});
