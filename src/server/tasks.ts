import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import type { Exemplar } from '../concepts/exemplar.js';
import type { DatasetItem } from '../data/dataset.js';
import type { PreprocessSpec } from '../data/preprocess.js';
import { edit, optionsFor, type EditResult } from '../edit/edit.js';
import { METHOD_NAMES, METHODS, type MethodName, type Setting } from '../edit/methods.js';
import { describeGuard } from '../edit/guard.js';
import type { RetrainLastReport } from '../edit/retrain-last.js';
import type { RewriteReport } from '../edit/rewrite.js';
import { isRuleditError } from '../errors.js';
import { byClass, changes } from '../eval/changes.js';
import { PredictionCache, predictFiles } from '../eval/predictions.js';
import { TailPredictions } from '../eval/tail-predictions.js';
import { Traces, withTraces } from '../runtime/block-trace.js';
import type { EditRecord } from '../onnx/history.js';
import { modelFromProto, parseModel, serializeModel, type OnnxModel } from '../onnx/model.js';
import { pngUrl, top5 } from './pixels.js';
import type { TestSets } from './scenes.js';
import type { CompareRow, EditSafety, EditView, Evaluation } from './wire.js';

/**
 * The long work of the web editor as plain functions of plain (structured-cloneable) data, so it
 * can run in a worker thread: the rewrite's solver and TF.js fine-tuning are synchronous
 * JavaScript that would otherwise stall every request while they run.
 */
export interface EditParams {
  method: MethodName;
  /** Class the fine-tuning baselines push x' toward (the edit itself needs no label). */
  label?: number;
  /** Options the page set, per method of the registry; edit() fills the rest from its defaults. */
  settings: Partial<Record<MethodName, Setting>>;
}

export interface EditTask {
  kind: 'edit' | 'compare';
  modelBytes: Uint8Array;
  spec: PreprocessSpec;
  labels?: string[];
  /** One per image of the chosen style (or one): every method edits with all of them. */
  exemplars: Exemplar[];
  params: EditParams;
  statsData: DatasetItem[];
  tests: TestSets;
}

/** An edit's outcome from the worker: what the page is sent, and the edited model. */
export interface EditOutcome extends Omit<EditView, 'history'> {
  modelBytes: Uint8Array;
  record: EditRecord;
}

type Say = (fraction: number, message: string) => void;

export function runEdit(task: EditTask, say: Say): Promise<EditOutcome> {
  return withTraces(undefined, fromBytes(task.modelBytes), task.spec, undefined, (traces) =>
    editAndMeasure(traces, task, task.params, say, 0, 1),
  );
}

/** The rewrite and both fine-tuning baselines from the same model and exemplar. */
export async function runCompare(
  task: EditTask,
  say: Say,
): Promise<{ rows: CompareRow[]; label: string }> {
  // Every method reads the same guard, reference and test images: once, through one set of traces.
  return withTraces(undefined, fromBytes(task.modelBytes), task.spec, undefined, async (traces) => {
    const methods = METHOD_NAMES;
    const rows: CompareRow[] = [];
    for (const [i, method] of methods.entries()) {
      const start = performance.now();
      const seconds = () => (performance.now() - start) / 1000;
      try {
        const out = await editAndMeasure(
          traces,
          task,
          { ...task.params, method },
          say,
          i / methods.length,
          (i + 1) / methods.length,
        );
        rows.push(compareRow(method, out, seconds()));
      } catch (e) {
        // A refused rewrite is a result of the comparison, not a failure of it.
        if (!(isRuleditError(e) && e.code === 'guard-rejected')) throw e;
        rows.push(rejectedRow(method, e.message, seconds()));
      }
    }
    const label = task.params.label ?? 0;
    return { rows, label: task.labels?.[label] ?? String(label) };
  });
}

function compareRow(method: MethodName, out: EditOutcome, seconds: number): CompareRow {
  const e = out.evaluation;
  return {
    method,
    block: out.block,
    seconds,
    xPrimeTop1: `${out.xPrime.after[0].label} ${out.xPrime.after[0].p.toFixed(0)}%`,
    testAfter: e.testAfter,
    cleanAfter: e.cleanAfter,
    cleanDrop: e.cleanDrop,
    fixedCount: e.fixedCount,
    brokenCount: e.brokenCount,
    ...(out.guard ? { strength: out.strength, flipRate: out.guard.flipRate } : {}),
  };
}

function rejectedRow(method: MethodName, why: string, seconds: number): CompareRow {
  return {
    method,
    block: '-',
    seconds,
    xPrimeTop1: '-',
    testAfter: NaN,
    cleanAfter: NaN,
    cleanDrop: NaN,
    fixedCount: 0,
    brokenCount: 0,
    rejected: why,
  };
}

async function editAndMeasure(
  traces: Traces,
  task: EditTask,
  params: EditParams,
  say: Say,
  from: number,
  to: number,
): Promise<EditOutcome> {
  const at = (f: number) => from + (to - from) * f;
  say(at(0.02), `${params.method}: preparing`);
  // The registry (edit/methods.ts) fills every option the page left unset, as for the CLI.
  const { method, label } = params;
  const { model } = traces;
  const options = optionsFor(method, params.settings[method] ?? {}, {
    target: label ?? 0,
    statsData: task.statsData,
    guard: {},
    traces,
    onProgress: (m: string) => say(at(0.3), `${method}: ${m}`),
  });
  const out = await edit({ model, spec: task.spec, labels: task.labels }, task.exemplars, options);
  say(at(0.6), `${params.method}: top-5 on x'`);
  const xPrimes = task.exemplars.map((e) => e.transformed);
  const before = await top5(model, xPrimes, task.spec, task.labels);
  const after = await top5(out.model, xPrimes, task.spec, task.labels);
  say(at(0.7), `${params.method}: evaluating the test folders`);
  const evaluation = await evaluatePair(traces, out.model, out.report.block, task);
  return {
    modelBytes: serializeModel(out.model.proto),
    record: out.record,
    report: out.report,
    block: out.report.block,
    ...safety(params.method, out.report),
    xPrime: { before: before[0], after: after[0] },
    exemplars: before.map((b, i) => ({ before: b[0], after: after[i][0] })),
    evaluation,
  };
}

/** The guard's figures of a guarded method, lifted out of its report for the page. */
function safety(method: MethodName, report: EditResult['report']): EditSafety {
  if (!METHODS[method].guarded)
    return { guardText: `${method}: no safety guard (it measures the rewrite and retrain-last)` };
  const r = report as RewriteReport | RetrainLastReport;
  return {
    guard: r.guard,
    strength: r.strength,
    ...('keyGrid' in r ? { keyGrid: r.keyGrid } : {}),
    guardText: r.guard ? describeGuard(r.guard) : 'guard: off',
  };
}

/** Before and after on the test folders: the edited model runs only its tail where it can. */
async function evaluatePair(
  traces: Traces,
  after: OnnxModel,
  block: string,
  task: EditTask,
): Promise<Evaluation> {
  const { test, clean } = task.tests;
  // The original model's top-1 comes with the tails' captures; a whole run only where they fail.
  const original = new PredictionCache(traces.model, task.spec);
  const tails = new TailPredictions(traces, (file, cls) => original.remember(file, cls));
  const predict = async (items: DatasetItem[]) => {
    const files = items.map((i) => i.file);
    const edited =
      (await tails.predict(after, block, files)) ?? (await predictFiles(after, files, task.spec));
    return [await original.predict(files), edited];
  };
  const [tb, ta] = await predict(test.items);
  const [cb, ca] = await predict(clean.items);
  const name = (c: number) => task.labels?.[c] ?? String(c);
  const labels = test.items.map((i) => i.label);
  const onTest = changes(labels, tb, ta);
  const onClean = changes(
    clean.items.map((i) => i.label),
    cb,
    ca,
  );
  const perClass = [...byClass(labels)].map(([c, idx]) => {
    const { before, after } = changes(labels, tb, ta, idx);
    return { class: c, name: name(c), n: idx.length, before, after };
  });
  const thumbs = (idx: number[]) =>
    Promise.all(
      idx.slice(0, 8).map(async (i) => ({
        src: await thumb(test.items[i].file),
        truth: name(test.items[i].label!),
        before: name(tb[i]),
        after: name(ta[i]),
      })),
    );
  return {
    testTitle: test.title,
    cleanTitle: clean.title,
    perClass,
    testBefore: onTest.before,
    testAfter: onTest.after,
    cleanBefore: onClean.before,
    cleanAfter: onClean.after,
    cleanDrop: onClean.before - onClean.after,
    fixed: await thumbs(onTest.fixed),
    broken: await thumbs(onTest.broken),
    fixedCount: onTest.fixed.length,
    brokenCount: onTest.broken.length,
  };
}

/** A small PNG data URL of an image file, for the page. */
export async function thumb(file: string): Promise<string> {
  const png = await sharp(await readFile(file))
    .resize(64, 64, { fit: 'inside' })
    .png()
    .toBuffer();
  return pngUrl(png);
}

function fromBytes(bytes: Uint8Array): OnnxModel {
  return modelFromProto(parseModel(bytes));
}
