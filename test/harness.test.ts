import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { loadStyle } from '../src/concepts/style.ts';
import {
  buildTestSet,
  caseForSeed,
  caseVariants,
  saveTestSet,
  type TestSetManifest,
} from '../src/concepts/testset.ts';
import { transformedFiles } from '../src/concepts/transformed.ts';
import { openDataset, type DatasetItem } from '../src/data/dataset.ts';
import { parsePreprocess } from '../src/data/preprocess.ts';
import { RuleditError } from '../src/errors.ts';
import { edit } from '../src/edit/edit.ts';
import type { EditFunction } from '../src/eval/trial.ts';
import { runHarness, type HarnessOptions } from '../src/eval/harness.ts';
import { methodGrid } from '../src/eval/grid.ts';
import { predictFiles } from '../src/eval/predictions.ts';
import { aggregate, loadResults, MEASURE_KEYS, type ResultLine } from '../src/eval/results.ts';
import { saveModel } from '../src/onnx/save.ts';
import type { OnnxModel } from '../src/onnx/model.ts';
import { ruledit } from './fixtures/cli.ts';
import { colourModel, COLOURS, PREPROCESS, writePatchWorld } from './fixtures/colours.ts';

const spec = parsePreprocess(PREPROCESS, 'test');

/**
 * The colour world (test/fixtures/colours.ts): a hand-set classifier names the colour of a patch.
 * Concept 'patch' = the patch; style 'bluish' = blue noise textures, so a transformed red or
 * green patch reads as blue (an error the edit can fix), a blue one stays blue.
 */
let dir: string;
let model: OnnxModel;
let clean: DatasetItem[];
let manifest: TestSetManifest;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ruledit-harness-'));
  model = colourModel();
  const { index } = await writePatchWorld(dir, { classes: 3, perClass: 6, styles: 3 });
  await writeFile(join(dir, 'index.json'), JSON.stringify(index));
  manifest = buildTestSet(index, {
    concept: 'patch',
    style: await loadStyle(join(dir, 'bluish')),
    nTrain: 3,
    seed: 1,
  });
  manifest.cases = manifest.cases.slice(0, 2); // red and green targets: enough, and faster
  clean = (await openDataset(join(dir, 'images'))).items;
});

const methods = () => [
  methodGrid('rewrite', [{ layer: 'score' }]),
  methodGrid('finetune-local', [{ layer: 'score', steps: 20, lr: 0.05 }]),
];

function options(results: string, extra: Partial<HarnessOptions> = {}): HarnessOptions {
  return {
    testsets: [manifest],
    methods: methods(),
    clean,
    results,
    statsData: clean,
    cacheDir: join(dir, 'cache'),
    // Bookkeeping is under test here, not selection or safety: no budget rejects a setting.
    maxDrop: 100,
    guardMaxDrop: 100,
    ...extra,
  };
}

/** edit() that counts its calls, keeps the edited models, and can fail on call `failAt`. */
function countingEdit(failAt = Infinity) {
  const models: OnnxModel[] = [];
  let calls = 0;
  const fn: EditFunction = async (m, exemplars, opts) => {
    if (++calls === failAt) throw new Error('interrupted');
    const r = await edit(m, exemplars, opts);
    models.push(r.model);
    return r;
  };
  return { fn, models, calls: () => calls };
}

const fileLines = (path: string): ResultLine[] =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));

/** Errors corrected recomputed from the three predictions with plain loops (not protocol.ts). */
async function handScores(line: ResultLine, edited: OnnxModel) {
  const saved = manifest.cases.find((c) => c.id === line.case)!;
  const c = caseForSeed(manifest, saved, line.seed - saved.seed);
  const test = caseVariants(manifest, c).test;
  const files = await transformedFiles(test, manifest.transformation, {
    cacheDir: join(dir, 'cache'),
  });
  const orig = await predictFiles(
    model,
    test.map((v) => v.image),
    spec,
  );
  const before = await predictFiles(model, files, spec);
  const after = await predictFiles(edited, files, spec);
  const out: Record<
    string,
    { value: number | null; before: number; after: number; images: number }
  > = {};
  for (const [key, target, role] of [
    ['targetSame', true, 'same'],
    ['targetHeldout', true, 'heldout'],
    ['otherSame', false, 'same'],
    ['otherHeldout', false, 'heldout'],
  ] as const) {
    let [images, eBefore, eAfter] = [0, 0, 0];
    test.forEach((v, i) => {
      if (v.target !== target || v.styleRole !== role || orig[i] !== v.label) return;
      images++;
      if (before[i] !== v.label) eBefore++;
      if (after[i] !== v.label) eAfter++;
    });
    const value = eBefore === 0 ? null : Math.max(-100, (100 * (eBefore - eAfter)) / eBefore);
    out[key] = { value, before: eBefore, after: eAfter, images };
  }
  const cleanFiles = clean.map((i) => i.file);
  const [cb, ca] = [
    await predictFiles(model, cleanFiles, spec),
    await predictFiles(edited, cleanFiles, spec),
  ];
  let diff = 0;
  clean.forEach((item, i) => (diff += Number(cb[i] === item.label) - Number(ca[i] === item.label)));
  return { scores: out, cleanDrop: (100 * diff) / clean.length };
}

describe('evaluation harness', () => {
  it('appends a line per (case, method, seed), resumes after an interruption, and matches a hand count', async () => {
    const results = join(dir, 'results.jsonl');
    // Run 1 stops at the third edit: two lines are on disk.
    const first = countingEdit(3);
    await assert.rejects(
      runHarness({ model, spec }, options(results, { edit: first.fn })),
      /interrupted/,
    );
    assert.equal(fileLines(results).length, 2);
    // Run 2 does the two jobs left and nothing else.
    const second = countingEdit();
    const progress: string[] = [];
    const run = await runHarness(
      { model, spec },
      options(results, { edit: second.fn, onProgress: (m) => progress.push(m) }),
    );
    assert.equal(second.calls(), 2);
    assert.deepEqual([run.ran, run.skipped, run.lines.length], [2, 2, 4]);
    const lines = fileLines(results);
    assert.equal(lines.length, 4);
    assert.deepEqual(
      lines.map((l) => `${l.case} ${l.method}`),
      [
        'patch/bluish/0 rewrite',
        'patch/bluish/0 finetune-local',
        'patch/bluish/1 rewrite',
        'patch/bluish/1 finetune-local',
      ],
    );
    assert.ok(
      progress.some((p) => /^\[4\/4\] case 2\/2 patch\/bluish\/1 seed 1 finetune-local: /.test(p)),
    );
    // The two lines of run 2, against the models its edits returned.
    for (const [i, line] of lines.slice(2).entries()) {
      const hand = await handScores(line, second.models[i]);
      for (const k of MEASURE_KEYS)
        assert.deepEqual(line.scores![k], hand.scores[k], `${line.method} ${k}`);
      assert.ok(Math.abs(line.cleanDrop! - hand.cleanDrop) < 1e-9);
    }
    // Not a vacuous check: the rewrite fixed blue-looking green patches on its target class.
    const rewrite = lines[2];
    assert.equal(rewrite.target, 1);
    assert.ok(rewrite.scores!.targetSame.before > 0 && rewrite.scores!.targetSame.value! > 0);

    // Run 3: nothing left; a line cut short by a crash is dropped and the file repaired.
    await appendFile(results, '{"version":1,"key":"abc","mod');
    const third = countingEdit();
    const again = await runHarness({ model, spec }, options(results, { edit: third.fn }));
    assert.deepEqual([third.calls(), again.ran, again.skipped], [0, 0, 4]);
    assert.ok(readFileSync(results, 'utf8').endsWith('}\n'));
    assert.deepEqual(
      again.lines.map((l) => l.key),
      lines.map((l) => l.key),
    );
    // A second seed re-draws the splits: four new jobs, the first four skipped.
    const fourth = countingEdit();
    const seeds = await runHarness(
      { model, spec },
      options(results, { edit: fourth.fn, seeds: 2 }),
    );
    assert.deepEqual([fourth.calls(), seeds.ran, seeds.skipped], [4, 4, 4]);
    assert.deepEqual([...new Set(fileLines(results).map((l) => l.seed))], [1, 2]);
  });

  it('rejects a setting whose clean accuracy drop is above the threshold', async () => {
    // The rewrite teaches 'blue look = red': the blue clean images become red (-33 points).
    const results = join(dir, 'strict.jsonl');
    const one = { ...manifest, cases: manifest.cases.slice(0, 1) };
    const run = await runHarness(
      { model, spec },
      {
        ...options(results, { testsets: [one], methods: [methods()[0]] }),
        maxDrop: 0.25,
      },
    );
    const [line] = run.lines;
    assert.equal(line.setting, null);
    assert.equal(line.scores, null);
    assert.match(line.rejected!, /more than 0.25 points/);
    assert.ok(line.candidates[0].cleanDrop > 0.25);
    assert.deepEqual(aggregate(run.lines)[0].rejected, 1);
  });

  it('a setting the safety guard refuses is recorded and the others still compete', async () => {
    const results = join(dir, 'guarded.jsonl');
    const one = { ...manifest, cases: manifest.cases.slice(0, 1) };
    const grid = [
      { layer: 'score', strength: 1 },
      { layer: 'score', strength: 0.5 },
    ];
    // The guard's refusal as rewrite() raises it, for the first setting only.
    const guarded: EditFunction = async (m, exemplars, opts) => {
      if ((opts as { strength?: number }).strength === 1)
        throw new RuleditError(
          'guard-rejected',
          'the edit changes the top-1 of 30% of the guard images',
        );
      return edit(m, exemplars, opts);
    };
    const run = await runHarness(
      { model, spec },
      {
        ...options(results, {
          testsets: [one],
          methods: [methodGrid('rewrite', grid)],
          edit: guarded,
        }),
      },
    );
    const [line] = run.lines;
    assert.deepEqual(line.refused, [
      { setting: grid[0], reason: 'the edit changes the top-1 of 30% of the guard images' },
    ]);
    assert.deepEqual(line.setting, grid[1]);
    assert.equal(line.candidates.length, 1);
    assert.ok(line.edit!.strength! <= 0.5);
    // Any other error still stops the run.
    const broken: EditFunction = async () => {
      throw new Error('bug');
    };
    await assert.rejects(
      runHarness(
        { model, spec },
        options(join(dir, 'broken.jsonl'), { testsets: [one], edit: broken }),
      ),
      /bug/,
    );
  });

  it('aggregates per method and per case, leaving out n/a numbers and counting them', () => {
    const score = (value: number | null) => ({ value, before: 1, after: 0, images: 1 });
    const line = (method: string, c: string, vals: (number | null)[], drop: number | null) =>
      ({
        method,
        case: c,
        scores:
          drop === null
            ? null
            : Object.fromEntries(MEASURE_KEYS.map((k, i) => [k, score(vals[i])])),
        cleanDrop: drop,
      }) as ResultLine;
    const lines = [
      line('rewrite', 'a', [100, 50, null, 0], 0.1),
      line('rewrite', 'a', [0, null, null, 20], 0.3),
      line('rewrite', 'b', [50, 50, 50, 50], 0),
      line('rewrite', 'b', [], null),
      line('finetune-local', 'a', [-100, 0, 0, 0], 0.2),
    ];
    const [rw, ft] = aggregate(lines);
    assert.deepEqual(
      [rw.method, rw.targetSame, rw.targetHeldout, rw.otherSame, rw.otherHeldout],
      ['rewrite', 50, 50, 50, 70 / 3],
    );
    assert.deepEqual(rw.counts, { targetSame: 3, targetHeldout: 2, otherSame: 1, otherHeldout: 3 });
    assert.ok(Math.abs(rw.cleanDrop - 0.4 / 3) < 1e-12);
    assert.deepEqual([rw.lines, rw.rejected, ft.targetSame], [4, 1, -100]);
    const byCase = aggregate(lines, 'case');
    assert.deepEqual(
      byCase.map((r) => [r.method, r.case, r.otherSame]),
      [
        ['rewrite', 'a', null],
        ['rewrite', 'b', 50],
        ['finetune-local', 'a', 0],
      ],
    );
  });

  it('ruledit benchmark runs the harness, writes a report, and resumes', async () => {
    const world = join(dir, 'cli');
    await mkdir(world);
    await saveModel(model, join(world, 'model.onnx'));
    await writeFile(join(world, 'preprocess.json'), JSON.stringify(PREPROCESS));
    await writeFile(join(world, 'labels.txt'), COLOURS.map(([n]) => n).join('\n'));
    await saveTestSet({ ...manifest, cases: manifest.cases.slice(1) }, join(world, 'green.json'));
    const args = [
      'benchmark',
      join(world, 'model.onnx'),
      '--testsets',
      join(world, 'green.json'),
      '--methods',
      'rewrite',
      '--layer',
      'score',
      '--stats-data',
      join(dir, 'images'),
      '--results',
      join(world, 'r.jsonl'),
      '--max-drop',
      '100',
    ];
    const env = { RULEDIT_CACHE: join(dir, 'cache') };
    const first = await ruledit([...args, '--report', join(world, 'report')], env);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /1 jobs run, 0 found finished/);
    assert.match(first.stdout, /rewrite\s+[-\d.]+ \(1\)/);
    assert.match(first.stderr, /\[1\/1\] case 1\/1 patch\/bluish\/1 seed 1 rewrite: targetSame/);
    assert.ok(existsSync(join(world, 'report', 'report.html')));
    assert.match(
      readFileSync(join(world, 'report', 'methods.csv'), 'utf8'),
      /rewrite,patch\/bluish\/1/,
    );
    const second = await ruledit(args, env);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /0 jobs run, 1 found finished/);
    const noStats = await ruledit(
      args.filter((a, i) => a !== '--stats-data' && args[i - 1] !== '--stats-data'),
      env,
    );
    assert.equal(noStats.code, 2);
    assert.match(noStats.stderr, /rewrite needs reference images .*: pass --stats-data/);
    // --results naming a file that is not a results file: refused, the file untouched.
    for (const victim of [join(world, 'model.onnx'), join(world, 'green.json')]) {
      const before = sha(victim);
      const r = await ruledit([...args.slice(0, -4), '--results', victim], env);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /is not a ruledit results file \(line \d+/);
      assert.equal(sha(victim), before, `${victim} is unchanged`);
    }
  });

  it('refuses a results file another run is writing, and takes over the lock of a killed run', async () => {
    const results = join(dir, 'locked.jsonl');
    writeFileSync(`${results}.lock`, String(process.pid)); // a live writer
    await assert.rejects(runHarness({ model, spec }, options(results)), { code: 'locked' });
    writeFileSync(`${results}.lock`, '999999999'); // a writer that was killed
    const run = await runHarness({ model, spec }, options(results, { edit: countingEdit().fn }));
    assert.equal(run.ran, 4);
    assert.ok(!existsSync(`${results}.lock`), 'released when the run ends');
  });

  it('opens a results file only if it is one: a cut last line is repaired, anything else refused', async () => {
    const file = join(dir, 'mixed.jsonl');
    const line = (key: string) => JSON.stringify({ version: 1, key, model: 'm' });
    await writeFile(file, `${line('a')}\n${line('b')}\n{"version":1,"key":"c","mo`);
    assert.deepEqual(
      (await loadResults(file, 'm')).map((l) => l.key),
      ['a', 'b'],
    );
    assert.equal(readFileSync(file, 'utf8'), `${line('a')}\n${line('b')}\n`);
    for (const text of [
      `# notes\n${line('a')}\n`, // someone's file that happens to hold a result line
      `${line('a')}\nnot json\n${line('b')}\n`, // a broken line in the middle
      'README without a final newline', // a text file
    ]) {
      await writeFile(file, text);
      await assert.rejects(loadResults(file, 'm'), { code: 'not-results' });
      assert.equal(readFileSync(file, 'utf8'), text, 'the file is left as it was');
    }
  });
});

const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
