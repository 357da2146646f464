import { sha256 } from '../io/digest.js';
import {
  caseForSeed,
  testSetHash,
  type TestCase,
  type TestSetManifest,
} from '../concepts/testset.js';
import type { Classifier } from '../classifier.js';
import { RuleditError } from '../errors.js';
import { methodConfig, type MethodGrid } from './grid.js';
import { selectSetting } from './protocol.js';
import {
  MEASURE_KEYS,
  appendResult,
  loadResults,
  lockResults,
  type ResultLine,
} from './results.js';
import {
  trialContext,
  type PreparedCase,
  type TrialContextOptions,
  type TrialOutcome,
} from './trial.js';

/**
 * The evaluation harness of docs/method.md section 9: every editing method, on every (concept, style,
 * target class) case of the test sets and every seed, scored the same way. A (case, method, seed)
 * is a line of the results .jsonl file, appended as soon as all its settings are scored, so an
 * interrupted run resumes where it stopped. The settings' trials run in this process or on
 * another executor (workers on a queue: queue/coordinator.ts); the lines are the same.
 */
export interface HarnessOptions extends TrialContextOptions {
  testsets: TestSetManifest[];
  methods: MethodGrid[];
  /** Splits per case: seed k re-draws the split with the manifest's seed + k (k = 0: as saved). */
  seeds?: number;
  /** Results .jsonl file (appended to; existing lines of this run are skipped). */
  results: string;
  /** Largest clean accuracy drop (points) a setting may cause to be chosen. */
  maxDrop?: number;
  /** Where the trials run (default: here, one after another). */
  executor?: HarnessExecutor;
}

/** A (case, method, seed) of the plan: one line of the results file. */
export interface LineJob {
  key: string;
  /** Index into `testsets`. */
  testset: number;
  caseId: string;
  /** Seed index: the case's split re-drawn with its seed + k. */
  k: number;
  case: TestCase;
  method: MethodGrid;
  /** 'case 2/6 person/snowy_ground/817 seed 3' for progress lines. */
  where: string;
}

/** One setting of a line's method: the unit an executor runs. */
export interface TrialJob {
  line: LineJob;
  setting: number;
}

export interface HarnessExecutor {
  /**
   * Runs the trials (they come grouped by case) and calls `done` once per trial as it finishes,
   * in any order. Rejects when a trial cannot be run.
   */
  run(
    classifier: Classifier,
    options: HarnessOptions,
    trials: TrialJob[],
    done: (trial: TrialJob, outcome: TrialOutcome) => Promise<void>,
  ): Promise<void>;
}

export interface HarnessRun {
  /** Lines of this run's jobs, read back or new, in job order. */
  lines: ResultLine[];
  /** Jobs computed now, and jobs found finished in the results file. */
  ran: number;
  skipped: number;
}

export async function runHarness(
  classifier: Classifier,
  options: HarnessOptions,
): Promise<HarnessRun> {
  const { methods } = options;
  const say = options.onProgress ?? (() => {});
  if (!methods.length) throw new RuleditError('bad-option', 'no editing method given');
  if (new Set(methods.map((m) => m.name)).size !== methods.length)
    throw new RuleditError('bad-option', 'two methods share a name');
  if (!options.clean.length || options.clean.some((i) => i.label === undefined))
    throw new RuleditError(
      'bad-dataset',
      'the clean test set must be a non-empty labelled data set (class folders or labels.csv)',
    );
  const plan = planHarness(classifier, options);
  // Locked first: the lines read must be the lines the run appends to.
  const release = lockResults(options.results);
  try {
    const finished = new Map(
      (await loadResults(options.results, classifier.model.hash)).map((l) => [l.key, l]),
    );
    const pending = plan.filter((l) => !finished.has(l.key));
    const skipped = plan.length - pending.length;
    if (skipped) say(`${skipped} of ${plan.length} (case, method, seed) jobs done before, skipped`);
    const maxDrop = options.maxDrop ?? 0.25;
    const outcomes = new Map(pending.map((l) => [l.key, [] as TrialOutcome[]]));
    let ran = 0;
    const done = async ({ line, setting }: TrialJob, outcome: TrialOutcome) => {
      const got = outcomes.get(line.key);
      // A trial reported twice (a queue job run again after its worker seemed dead) counts once.
      if (!got || got[setting]) return;
      got[setting] = outcome;
      const { grid, name } = line.method;
      if (grid.length > 1)
        say(
          `${line.where}: ${name} setting ${setting + 1}/${grid.length} ${JSON.stringify(outcome.setting)}: ` +
            ('refused' in outcome
              ? 'refused by the guard'
              : `validation ${fmt(outcome.score)}, clean drop ${outcome.cleanDrop.toFixed(2)}`),
        );
      if (got.filter(Boolean).length < grid.length) return;
      const result = resultLine(classifier, options.testsets[line.testset], line, got, maxDrop);
      await appendResult(options.results, result);
      finished.set(result.key, result);
      outcomes.delete(line.key);
      ran++;
      say(`[${skipped + ran}/${plan.length}] ${line.where} ${name}: ${describeLine(result)}`);
    };
    const trials = pending.flatMap((line) =>
      line.method.grid.map((_, setting) => ({ line, setting })),
    );
    await (options.executor ?? inProcess).run(classifier, options, trials, done);
    return { lines: plan.map((l) => finished.get(l.key)!), ran, skipped };
  } finally {
    release();
  }
}

/** Every (case, seed, method) of a run, grouped by case, each with the key of its results line. */
export function planHarness(classifier: Classifier, options: HarnessOptions): LineJob[] {
  const seeds = options.seeds ?? 1;
  if (!(Number.isInteger(seeds) && seeds >= 1))
    throw new RuleditError('bad-option', `seeds must be a whole number >= 1, got ${seeds}`);
  const cases = options.testsets.flatMap((m, testset) =>
    m.cases.flatMap((saved) =>
      Array.from({ length: seeds }, (_, k) => ({
        m,
        testset,
        k,
        saved,
        c: caseForSeed(m, saved, k),
      })),
    ),
  );
  return cases.flatMap(({ m, testset, k, saved, c }, j) =>
    options.methods.map((method) => ({
      key: jobKey(
        classifier.model.hash,
        testSetHash(m),
        c.id,
        c.seed,
        method.name,
        methodConfig(method),
      ),
      testset,
      caseId: saved.id,
      k,
      case: c,
      method,
      where: `case ${j + 1}/${cases.length} ${c.id} seed ${c.seed}`,
    })),
  );
}

/** The embedded executor: one trial after another in this process, each case prepared once. */
export const inProcess: HarnessExecutor = {
  async run(classifier, options, trials, done) {
    const ctx = trialContext(classifier, options);
    const say = options.onProgress ?? (() => {});
    let current: { line: LineJob; prepared: PreparedCase } | undefined;
    try {
      for (const trial of trials) {
        const { line } = trial;
        const was = current?.line;
        if (was?.testset !== line.testset || was.caseId !== line.caseId || was.k !== line.k) {
          const start = performance.now();
          say(`${line.where}: preparing (transformed images are made once and cached)`);
          const prepared = await ctx.prepare(options.testsets[line.testset], line.caseId, line.k);
          current = { line, prepared };
          say(
            `${line.where}: ${prepared.exemplars.length} exemplars, ${prepared.validation.length} validation and ` +
              `${prepared.test.length} test images x style images (${((performance.now() - start) / 1000).toFixed(1)} s to prepare)`,
          );
        }
        const { method, case: c } = line;
        await done(
          trial,
          await ctx.trial(current!.prepared, c.target, method, method.grid[trial.setting]),
        );
      }
    } finally {
      await ctx.release();
    }
  },
};

/** A line from its settings' outcomes: the setting chosen on validation under the drop budget. */
function resultLine(
  classifier: Classifier,
  m: TestSetManifest,
  line: LineJob,
  outcomes: TrialOutcome[],
  maxDrop: number,
): ResultLine {
  const { case: c, method } = line;
  const tried = outcomes.flatMap((o) => ('refused' in o ? [] : [o]));
  const refused = outcomes.flatMap((o) =>
    'refused' in o ? [{ setting: o.setting, reason: o.refused }] : [],
  );
  const chosen = selectSetting(
    tried.map((t) => ({ ...t, score: t.score ?? NaN })),
    maxDrop,
  );
  return {
    version: 1,
    key: line.key,
    model: classifier.model.hash,
    testset: testSetHash(m),
    case: c.id,
    concept: m.concept,
    style: m.style.name,
    target: c.target,
    ...(c.targetName ? { targetName: c.targetName } : {}),
    nTrain: m.nTrain,
    seed: c.seed,
    method: method.name,
    kind: method.kind,
    config: methodConfig(method),
    setting: chosen?.setting ?? null,
    ...(chosen
      ? {}
      : {
          rejected: refused.length
            ? `${refused.length} setting(s) refused by the safety guard, the others dropped clean accuracy by more than ${maxDrop} points`
            : `every setting dropped clean accuracy by more than ${maxDrop} points`,
        }),
    scores: chosen?.test ?? null,
    cleanDrop: chosen?.cleanDrop ?? null,
    candidates: tried.map((t) => ({ setting: t.setting, score: t.score, cleanDrop: t.cleanDrop })),
    ...(refused.length ? { refused } : {}),
    ...(chosen ? { edit: chosen.edit } : {}),
    images: outcomes[0].images,
    seconds: outcomes.reduce((s, o) => s + o.seconds, 0),
    finished: new Date().toISOString(),
  };
}

function jobKey(...parts: (string | number)[]): string {
  return sha256(parts.join('\0')).slice(0, 24);
}

const fmt = (x: number | null) => (x === null || Number.isNaN(x) ? 'n/a' : x.toFixed(1));

/** 'target/same 50.0 (2->1), ... clean drop 0.10' for progress lines. */
export function describeLine(l: ResultLine): string {
  if (!l.scores) return `rejected (${l.rejected})`;
  const parts = MEASURE_KEYS.map((k) => {
    const s = l.scores![k];
    return `${k} ${fmt(s.value)} (${s.before}->${s.after})`;
  });
  return `${parts.join(', ')}; clean drop ${l.cleanDrop!.toFixed(2)}`;
}
