import type { Classifier } from '../classifier.js';
import type { Exemplar } from '../concepts/exemplar.js';
import type { EditRecord } from '../onnx/history.js';
import type { OnnxModel } from '../onnx/model.js';
import type { PreprocessSpec } from '../data/preprocess.js';
import { finetune, type FinetuneOptions, type FinetuneReport } from './finetune.js';
import type { DatasetItem } from '../data/dataset.js';
import type { GuardOptions } from './guard.js';
import { checkSetting, METHODS, methodOf, type MethodName, type Setting } from './methods.js';
import { retrainLast, type RetrainLastOptions, type RetrainLastReport } from './retrain-last.js';
import { rewrite, type RewriteOptions, type RewriteReport } from './rewrite.js';

/**
 * The one entry point for every editing method of the registry (methods.ts), EasyEdit-style:
 * each takes the classifier and the exemplars with its own typed options and returns the edited
 * model, the record appended to its history and a report, so a harness can run them
 * interchangeably. Options are checked against the registry before any work starts.
 */
export type RewriteEdit = { method?: 'rewrite' } & Omit<RewriteOptions, 'spec'>;
export type FinetuneEdit = { method: 'finetune-local' | 'finetune-global' } & Omit<
  FinetuneOptions,
  'scope' | 'spec'
>;
export type RetrainLastEdit = { method: 'retrain-last' } & Omit<RetrainLastOptions, 'spec'>;
export type EditOptions = RewriteEdit | FinetuneEdit | RetrainLastEdit;

/** What an edit gives back; `report` is the method's own (typed by the options' `method`). */
export interface EditResult<Report = RewriteReport | FinetuneReport | RetrainLastReport> {
  model: OnnxModel;
  record: EditRecord;
  report: Report;
}

export function edit(
  classifier: Classifier,
  exemplars: Exemplar[],
  options?: RewriteEdit,
): Promise<EditResult<RewriteReport>>;
export function edit(
  classifier: Classifier,
  exemplars: Exemplar[],
  options: FinetuneEdit,
): Promise<EditResult<FinetuneReport>>;
export function edit(
  classifier: Classifier,
  exemplars: Exemplar[],
  options: RetrainLastEdit,
): Promise<EditResult<RetrainLastReport>>;
export function edit(
  classifier: Classifier,
  exemplars: Exemplar[],
  options?: EditOptions,
): Promise<EditResult>;
export async function edit(
  classifier: Classifier,
  exemplars: Exemplar[],
  options: EditOptions = {},
): Promise<EditResult> {
  const { model, spec } = classifier;
  const name = options.method ?? 'rewrite';
  methodOf(name);
  checkSetting(name, options);
  if (METHODS[name].guarded && 'guard' in options && options.guard)
    checkSetting(name, { maxDrop: options.guard.maxDrop });
  const { method: _, ...rest } = options;
  return (RUNNERS[name] as Runner<EditOptions>)(model, exemplars, { ...rest, spec });
}

type Runner<O> = (
  model: OnnxModel,
  exemplars: Exemplar[],
  options: Omit<O, 'method'> & { spec: PreprocessSpec },
) => Promise<EditResult>;

/** Each method of the registry and the function that runs it: edit() dispatches here. */
const RUNNERS: {
  rewrite: Runner<RewriteEdit>;
  'finetune-local': Runner<FinetuneEdit>;
  'finetune-global': Runner<FinetuneEdit>;
  'retrain-last': Runner<RetrainLastEdit>;
} = {
  rewrite: rewrite,
  'finetune-local': (model, exemplars, o) => finetune(model, exemplars, { ...o, scope: 'local' }),
  'finetune-global': (model, exemplars, o) => finetune(model, exemplars, { ...o, scope: 'global' }),
  'retrain-last': retrainLast,
};

/**
 * edit() options for one setting of a method (the harness's grids, the page's controls), given
 * what the caller has for every method: a method that needs a label is told `target`; a guarded
 * one gets the reference images and the guard, the setting's `maxDrop` becoming the guard's budget.
 */
export function optionsFor(
  method: MethodName,
  setting: Setting,
  context: { target: number; statsData?: DatasetItem[]; guard?: GuardOptions } & Record<
    string,
    unknown
  >,
): EditOptions {
  const { target, statsData, guard, ...rest } = context;
  const needs = METHODS[method];
  const { maxDrop, ...own } = setting;
  return {
    ...rest,
    ...own,
    ...(needs.guarded
      ? {
          statsData,
          guard: maxDrop === undefined || !guard ? guard : { ...guard, maxDrop: maxDrop as number },
        }
      : {}),
    ...(needs.needsLabel ? { label: target } : {}),
    method,
  } as EditOptions;
}
