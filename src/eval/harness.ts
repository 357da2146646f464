import { createHash } from 'node:crypto';
import { loadExemplar } from '../concepts/exemplar.js';
import {
  caseForSeed,
  caseVariants,
  testSetHash,
  type CaseVariant,
  type TestCase,
  type TestSetManifest,
} from '../concepts/testset.js';
import { transformedFiles } from '../concepts/transformed.js';
import type { DatasetItem } from '../data/dataset.js';
import type { Classifier } from '../classifier.js';
import { edit as defaultEdit } from '../edit/edit.js';
import { pickBlock } from '../edit/layer.js';
import { splitReference } from '../edit/guard.js';
import { keyStatistics, type KeyStats } from '../edit/stats.js';
import { isRuleditError, RuleditError } from '../errors.js';
import type { Setting } from '../edit/methods.js';
import { editOptions, methodConfig, type MethodGrid } from './grid.js';
import { PredictionCache, predictFiles } from './predictions.js';
import {
  cleanAccuracyDrop,
  fourWay,
  selectSetting,
  type CaseImage,
  type Candidate,
} from './protocol.js';
import {
  MEASURE_KEYS,
  appendResult,
  loadResults,
  lockResults,
  toScore,
  type ResultLine,
  type Score,
  type MeasureKey,
} from './results.js';

/**
 * The evaluation harness of docs/method.md section 9: every editing method, on every (concept, style,
 * target class) case of the test sets and every seed, scored the same way. The original model's
 * predictions are computed once and shared; each finished (case, method, seed) is appended to a
 * .jsonl file at once, so an interrupted run resumes where it stopped.
 */
export interface HarnessOptions {
  testsets: TestSetManifest[];
  methods: MethodGrid[];
  /** Splits per case: seed k re-draws the split with the manifest's seed + k (k = 0: as saved). */
  seeds?: number;
  /** Labelled images for the clean accuracy drop (the data set the concept index covers). */
  clean: DatasetItem[];
  /** Results .jsonl file (appended to; existing lines of this run are skipped). */
  results: string;
  /**
   * Reference images for the rewrite: every 4th is held out for its safety guard, the rest give
   * the key statistics (docs/method.md section 6). `stats` (statistics computed before) goes with
   * `guardData`, or with a rewrite grid that turns the guard off.
   */
  statsData?: DatasetItem[];
  stats?: KeyStats;
  guardData?: DatasetItem[];
  /** The guard's flip budget (percent) for every rewrite setting that does not set its own. */
  maxFlips?: number;
  /** Largest clean accuracy drop (points) a setting may cause to be chosen. */
  maxDrop?: number;
  batchSize?: number;
  threads?: number;
  cacheDir?: string;
  /** The editing entry point (a test counts its calls). */
  edit?: typeof defaultEdit;
  onProgress?: (message: string) => void;
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
  const { model, spec } = classifier;
  const { methods } = options;
  const say = options.onProgress ?? (() => {});
  const seeds = options.seeds ?? 1;
  const editFn = options.edit ?? defaultEdit;
  const predictOpts = { batchSize: options.batchSize, threads: options.threads };
  if (!(Number.isInteger(seeds) && seeds >= 1))
    throw new RuleditError('bad-option', `seeds must be a whole number >= 1, got ${seeds}`);
  if (!methods.length) throw new RuleditError('bad-option', 'no editing method given');
  if (new Set(methods.map((m) => m.name)).size !== methods.length)
    throw new RuleditError('bad-option', 'two methods share a name');
  const clean = options.clean;
  if (!clean.length || clean.some((i) => i.label === undefined))
    throw new RuleditError(
      'bad-dataset',
      'the clean test set must be a non-empty labelled data set (class folders or labels.csv)',
    );
  // Locked first: the lines read must be the lines the run appends to.
  const release = lockResults(options.results);
  try {
    const finished = new Map(
      (await loadResults(options.results, model.hash)).map((l) => [l.key, l]),
    );

    const jobs = options.testsets.flatMap((m) =>
      m.cases.flatMap((c) => Array.from({ length: seeds }, (_, k) => ({ m, c, k }))),
    );
    const total = jobs.length * methods.length;
    const original = new PredictionCache(model, spec, predictOpts);
    const cleanFiles = clean.map((i) => i.file);
    const cleanLabels = clean.map((i) => i.label!);
    let cleanBefore: Int32Array | undefined;
    const reference = options.statsData ? splitReference(options.statsData) : undefined;
    const guardData = options.guardData ?? reference?.guard;
    const stats = new Map<string, Promise<KeyStats>>();
    const statsFor = (layer: string | undefined) => {
      if (options.stats) return Promise.resolve(options.stats);
      if (!options.statsData)
        throw new RuleditError(
          'no-stats',
          'the rewrite needs key statistics: give reference images (`statsData`)',
        );
      const key = layer ?? 'auto';
      if (!stats.has(key))
        stats.set(
          key,
          pickBlock(model, spec, layer).then((block) =>
            keyStatistics(model, block, reference!.stats, spec, {
              threads: options.threads,
              cacheDir: options.cacheDir,
              onWarning: say,
            }),
          ),
        );
      return stats.get(key)!;
    };

    const lines: ResultLine[] = [];
    let ran = 0;
    let skipped = 0;
    let done = 0;
    for (const [j, { m, c: saved, k }] of jobs.entries()) {
      const c = caseForSeed(m, saved, k);
      const testset = testSetHash(m);
      const keyOf = (spec: MethodGrid) =>
        jobKey(model.hash, testset, c.id, c.seed, spec.name, methodConfig(spec));
      const pending = methods.filter((s) => !finished.has(keyOf(s)));
      for (const s of methods) {
        const line = finished.get(keyOf(s));
        if (line) lines.push(line);
      }
      skipped += methods.length - pending.length;
      done += methods.length - pending.length;
      const where = `case ${j + 1}/${jobs.length} ${c.id} seed ${c.seed}`;
      if (!pending.length) {
        say(`${where}: done before, skipped`);
        continue;
      }
      const start = performance.now();
      say(`${where}: preparing (transformed images are made once and cached)`);
      const prepared = await prepareCase(m, c, options.cacheDir);
      // The original model's side, shared by every method and setting.
      cleanBefore ??= await predictFiles(model, cleanFiles, spec, predictOpts);
      const evalVariants = [...prepared.validation, ...prepared.test];
      const n = evalVariants.length;
      const before = await original.predict([
        ...evalVariants.map((v) => v.image),
        ...evalVariants.map((v) => v.file),
      ]);
      const [origPred, transBefore] = [before.subarray(0, n), before.subarray(n)];
      const exemplars = await Promise.all(
        prepared.train.map((t) => loadExemplar(t.image, t.mask, { modified: t.file }, spec)),
      );
      say(
        `${where}: ${exemplars.length} exemplars, ${prepared.validation.length} validation and ` +
          `${prepared.test.length} test images x style images (${((performance.now() - start) / 1000).toFixed(1)} s to prepare)`,
      );

      for (const method of pending) {
        const t0 = performance.now();
        const tried: (Candidate<Setting> & {
          test: Record<MeasureKey, Score>;
          edit: ResultLine['edit'];
        })[] = [];
        const refused: { setting: Setting; reason: string }[] = [];
        for (const [si, setting] of method.grid.entries()) {
          const shared: Record<string, unknown> & { target: number } = {
            target: c.target,
            threads: options.threads,
          };
          if (method.kind === 'rewrite') {
            shared.stats = await statsFor(setting.layer as string | undefined);
            // The statistics' images also feed the rewrite's preserve term, as in `edit`.
            if (reference) shared.statsData = reference.stats;
            shared.guard = guardData && { data: guardData, maxFlips: options.maxFlips };
          }
          let result;
          try {
            result = await editFn(classifier, exemplars, editOptions(method, setting, shared));
          } catch (e) {
            // The guard refusing a setting is that setting's outcome, not the run's failure.
            if (!isRuleditError(e) || e.code !== 'guard-rejected') throw e;
            refused.push({ setting, reason: e.message });
            say(
              `${where}: ${method.name} setting ${si + 1}/${method.grid.length}: refused by the guard`,
            );
            continue;
          }
          const after = await predictFiles(
            result.model,
            [...evalVariants.map((v) => v.file), ...cleanFiles],
            spec,
            predictOpts,
          );
          const images = evalVariants.map((v, i): CaseImage => ({
            label: v.label,
            target: v.target,
            style: v.styleRole,
            cleanBefore: origPred[i],
            transformedBefore: transBefore[i],
            transformedAfter: after[i],
          }));
          const val = fourWay(images.slice(0, prepared.validation.length));
          const test = fourWay(images.slice(prepared.validation.length));
          const cleanDrop = cleanAccuracyDrop(
            cleanLabels,
            Array.from(cleanBefore),
            Array.from(after.subarray(evalVariants.length)),
          );
          const r = result.report;
          tried.push({
            setting,
            score: meanDefined(MEASURE_KEYS.map((key) => val[key].value)),
            cleanDrop,
            test: Object.fromEntries(
              MEASURE_KEYS.map((key) => [key, toScore(test[key])]),
            ) as Record<MeasureKey, Score>,
            edit: {
              block: r.block,
              lossBefore: r.lossBefore,
              lossAfter: r.lossAfter,
              ...('strength' in r ? { strength: r.strength } : {}),
              ...('guard' in r && r.guard
                ? {
                    guard: {
                      flipRate: r.guard.flipRate,
                      meanKL: r.guard.meanKL,
                      images: r.guard.images,
                      maxFlips: r.guard.maxFlips,
                    },
                  }
                : {}),
            },
          });
          if (method.grid.length > 1)
            say(
              `${where}: ${method.name} setting ${si + 1}/${method.grid.length} ${JSON.stringify(setting)}: ` +
                `validation ${fmt(tried.at(-1)!.score)}, clean drop ${cleanDrop.toFixed(2)}`,
            );
        }
        const maxDrop = options.maxDrop ?? 0.25;
        const chosen = selectSetting(tried, maxDrop) as (typeof tried)[number] | undefined;
        const line: ResultLine = {
          version: 1,
          key: keyOf(method),
          model: model.hash,
          testset,
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
          candidates: tried.map((t) => ({
            setting: t.setting,
            score: Number.isNaN(t.score) ? null : t.score,
            cleanDrop: t.cleanDrop,
          })),
          ...(refused.length ? { refused } : {}),
          ...(chosen ? { edit: chosen.edit } : {}),
          images: {
            train: exemplars.length,
            validation: prepared.validation.length,
            test: prepared.test.length,
            clean: cleanFiles.length,
          },
          seconds: (performance.now() - t0) / 1000,
          finished: new Date().toISOString(),
        };
        await appendResult(options.results, line);
        finished.set(line.key, line);
        lines.push(line);
        ran++;
        done++;
        say(`[${done}/${total}] ${where} ${method.name}: ${describeLine(line)}`);
      }
    }
    return { lines, ran, skipped };
  } finally {
    release();
  }
}

/** Transformed files of a case's exemplars and test images (cached on disk). */
async function prepareCase(m: TestSetManifest, c: TestCase, cacheDir: string | undefined) {
  const v = caseVariants(m, c);
  const all = [...v.train, ...v.validation, ...v.test];
  const files = await transformedFiles(all, m.transformation, { cacheDir, seed: m.seed });
  const withFile = <T>(list: T[], offset: number) =>
    list.map((x, i) => ({ ...x, file: files[offset + i] }));
  return {
    train: withFile(v.train, 0),
    validation: withFile<CaseVariant>(v.validation, v.train.length),
    test: withFile<CaseVariant>(v.test, v.train.length + v.validation.length),
  };
}

function jobKey(...parts: (string | number)[]): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 24);
}

function meanDefined(xs: number[]): number {
  const ok = xs.filter((x) => !Number.isNaN(x));
  return ok.length ? ok.reduce((a, b) => a + b, 0) / ok.length : NaN;
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
