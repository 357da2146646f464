import { loadExemplar, type Exemplar } from '../concepts/exemplar.js';
import {
  caseForSeed,
  caseVariants,
  type CaseVariant,
  type TestSetManifest,
} from '../concepts/testset.js';
import { transformedFiles } from '../concepts/transformed.js';
import type { DatasetItem } from '../data/dataset.js';
import type { Classifier } from '../classifier.js';
import {
  edit as defaultEdit,
  optionsFor,
  type EditOptions,
  type EditResult,
} from '../edit/edit.js';
import { pickBlock } from '../edit/layer.js';
import { splitReference } from '../edit/guard.js';
import { keyStatistics, type KeyStats } from '../edit/stats.js';
import { isRuleditError, RuleditError } from '../errors.js';
import { METHODS, type Setting } from '../edit/methods.js';
import type { MethodGrid } from './grid.js';
import { PredictionCache, predictFiles } from './predictions.js';
import { TailPredictions } from './tail-predictions.js';
import { Traces } from '../runtime/block-trace.js';
import { cleanAccuracyDrop, fourWay, type CaseImage } from './protocol.js';
import { MEASURE_KEYS, toScore, type ResultLine, type Score, type MeasureKey } from './results.js';

/** An editing function as the harness calls it (edit() by default; a test may wrap it). */
export type EditFunction = (
  classifier: Classifier,
  exemplars: Exemplar[],
  options: EditOptions,
) => Promise<EditResult>;

/**
 * One trial of the harness: one method's setting, edited from a case's exemplars and scored on
 * the case's validation and test images and on the clean set. Everything a trial needs besides
 * the case is the context below, built once per run (or once per study by a queue worker).
 */
export interface TrialContextOptions {
  /** Labelled images for the clean accuracy drop. */
  clean: DatasetItem[];
  /** Reference images of the guarded methods: every 4th is held out for the guard, the rest give the rewrite's statistics and retrain-last's anchors. */
  statsData?: DatasetItem[];
  /**
   * Statistics computed before: one for every rewrite setting (with `guardData`, or a grid that
   * turns the guard off), or a list from which each setting takes its block's (the others are
   * computed from `statsData`).
   */
  stats?: KeyStats | KeyStats[];
  guardData?: DatasetItem[];
  /** The guard's budget (points of estimated clean drop) for every rewrite setting that does not set its own. */
  guardMaxDrop?: number;
  batchSize?: number;
  threads?: number;
  cacheDir?: string;
  /** Recompute what is cached (key statistics, transformed images) once in this run. */
  refresh?: boolean;
  /**
   * How an edited model is scored: `tail` (default) runs only the network after the edited block
   * on inputs captured once from the original model (eval/tail-predictions.ts); `whole` runs
   * every edited model from the pixels, the reference the tail is checked against.
   */
  evaluation?: 'tail' | 'whole';
  /** The editing entry point (a test counts its calls). */
  edit?: EditFunction;
  onProgress?: (message: string) => void;
}

/** A setting's outcome: its validation score and test scores, or the guard's refusal. Plain JSON. */
export type TrialOutcome = ScoredTrial | RefusedTrial;

export interface ScoredTrial {
  setting: Setting;
  /** Mean of the four errors-corrected numbers on the validation split (null: nothing to fix). */
  score: number | null;
  cleanDrop: number;
  test: Record<MeasureKey, Score>;
  edit: NonNullable<ResultLine['edit']>;
  images: ResultLine['images'];
  seconds: number;
}

export interface RefusedTrial {
  setting: Setting;
  refused: string;
  images: ResultLine['images'];
  seconds: number;
}

/** A case's shared side: its exemplars and the transformed files of its validation and test images. */
export interface PreparedCase {
  exemplars: Exemplar[];
  validation: (CaseVariant & { file: string })[];
  test: (CaseVariant & { file: string })[];
}

export interface TrialContext {
  classifier: Classifier;
  options: TrialContextOptions;
  prepare(m: TestSetManifest, caseId: string, k: number): Promise<PreparedCase>;
  trial(
    prepared: PreparedCase,
    target: number,
    method: MethodGrid,
    setting: Setting,
  ): Promise<TrialOutcome>;
  /** Frees the ONNX Runtime sessions and captures kept for the trials. */
  release(): Promise<void>;
}

export function trialContext(classifier: Classifier, options: TrialContextOptions): TrialContext {
  const { model, spec } = classifier;
  const say = options.onProgress ?? (() => {});
  const editFn = options.edit ?? defaultEdit;
  const predictOpts = { batchSize: options.batchSize, threads: options.threads };
  const original = new PredictionCache(model, spec, predictOpts);
  // One set of captures for every trial: the edits' guard and preserve images, the tails' inputs.
  const traces = new Traces(model, spec, predictOpts);
  // The captures for the tails run the original model: its predictions are kept, not recomputed.
  const tails =
    options.evaluation === 'whole'
      ? undefined
      : new TailPredictions(traces, (file, cls) => original.remember(file, cls));
  const cleanFiles = options.clean.map((i) => i.file);
  const cleanLabels = options.clean.map((i) => i.label!);
  const reference = options.statsData ? splitReference(options.statsData) : undefined;
  const guardData = options.guardData ?? reference?.guard;
  const stats = new Map<string, Promise<KeyStats>>();
  const given = options.stats;
  const statsFor = (layer: string | undefined) => {
    if (given && !Array.isArray(given)) return Promise.resolve(given);
    const key = layer ?? 'auto';
    if (!stats.has(key))
      stats.set(
        key,
        pickBlock(model, spec, layer).then((block) => {
          const known = given?.find((s) => s.block === block.name);
          if (known) return known;
          if (!reference)
            throw new RuleditError(
              'no-stats',
              'the rewrite needs key statistics: give reference images (`statsData`)',
            );
          return keyStatistics(model, block, reference.stats, spec, {
            threads: options.threads,
            cacheDir: options.cacheDir,
            refresh: options.refresh,
            onWarning: say,
          });
        }),
      );
    return stats.get(key)!;
  };

  return {
    classifier,
    options,
    async prepare(m, caseId, k) {
      const saved = m.cases.find((c) => c.id === caseId);
      if (!saved) throw new RuleditError('bad-testset', `the test set has no case '${caseId}'`);
      const c = caseForSeed(m, saved, k);
      const v = caseVariants(m, c);
      const all = [...v.train, ...v.validation, ...v.test];
      const files = await transformedFiles(all, m.transformation, {
        cacheDir: options.cacheDir,
        seed: m.seed,
        refresh: options.refresh,
        onWarning: say,
      });
      const withFile = <T>(list: T[], offset: number) =>
        list.map((x, i) => ({ ...x, file: files[offset + i] }));
      const validation = withFile(v.validation, v.train.length);
      const test = withFile(v.test, v.train.length + v.validation.length);
      const exemplars = await Promise.all(
        withFile(v.train, 0).map((t) => loadExemplar(t.image, t.mask, { modified: t.file }, spec)),
      );
      return { exemplars, validation, test };
    },
    async release() {
      await traces.release();
    },
    async trial(p, target, method, setting) {
      const t0 = performance.now();
      const images = {
        train: p.exemplars.length,
        validation: p.validation.length,
        test: p.test.length,
        clean: cleanFiles.length,
      };
      const seconds = () => (performance.now() - t0) / 1000;
      const shared: Record<string, unknown> & { target: number } = {
        target,
        threads: options.threads,
        traces,
      };
      const needs = METHODS[method.kind];
      if (needs.statistics) shared.stats = await statsFor(setting.layer as string | undefined);
      // For the guarded methods (optionsFor): the statistics' images also feed the rewrite's
      // preserve term (as in `edit`) and anchor retrain-last; the guard holds its own out.
      if (reference) shared.statsData = reference.stats;
      shared.guard = guardData && { data: guardData, maxDrop: options.guardMaxDrop };
      let result;
      try {
        result = await editFn(classifier, p.exemplars, optionsFor(method.kind, setting, shared));
      } catch (e) {
        // The guard refusing a setting is that setting's outcome, not the run's failure.
        if (!isRuleditError(e) || e.code !== 'guard-rejected') throw e;
        return { setting, refused: e.message, images, seconds: seconds() };
      }
      const evalVariants = [...p.validation, ...p.test];
      const files = [...evalVariants.map((v) => v.file), ...cleanFiles];
      const after =
        (await tails?.predict(result.model, result.report.block, files)) ??
        (await predictFiles(result.model, files, spec, predictOpts));
      // The original model's side, shared by every method and setting (mostly known from the capture).
      const n = evalVariants.length;
      const before = await original.predict([...evalVariants.map((x) => x.image), ...files]);
      const [origPred, transBefore, cleanBefore] = [
        before.subarray(0, n),
        before.subarray(n, 2 * n),
        before.subarray(2 * n),
      ];
      const scored = evalVariants.map((v, i): CaseImage => ({
        label: v.label,
        target: v.target,
        style: v.styleRole,
        cleanBefore: origPred[i],
        transformedBefore: transBefore[i],
        transformedAfter: after[i],
      }));
      const val = fourWay(scored.slice(0, p.validation.length));
      const test = fourWay(scored.slice(p.validation.length));
      const cleanDrop = cleanAccuracyDrop(
        cleanLabels,
        Array.from(cleanBefore),
        Array.from(after.subarray(evalVariants.length)),
      );
      const r = result.report;
      const score = meanDefined(MEASURE_KEYS.map((key) => val[key].value));
      return {
        setting,
        score: Number.isNaN(score) ? null : score,
        cleanDrop,
        test: Object.fromEntries(MEASURE_KEYS.map((key) => [key, toScore(test[key])])) as Record<
          MeasureKey,
          Score
        >,
        edit: {
          block: r.block,
          lossBefore: r.lossBefore,
          lossAfter: r.lossAfter,
          ...('strength' in r ? { strength: r.strength } : {}),
          ...('guard' in r && r.guard
            ? {
                guard: {
                  estimatedDrop: r.guard.estimatedDrop,
                  flipRate: r.guard.flipRate,
                  meanKL: r.guard.meanKL,
                  images: r.guard.images,
                  maxDrop: r.guard.maxDrop,
                },
              }
            : {}),
        },
        images,
        seconds: seconds(),
      };
    },
  };
}

function meanDefined(xs: number[]): number {
  const ok = xs.filter((x) => !Number.isNaN(x));
  return ok.length ? ok.reduce((a, b) => a + b, 0) / ok.length : NaN;
}
