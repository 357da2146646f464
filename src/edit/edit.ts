import type { Classifier } from '../classifier.js';
import type { Exemplar } from '../concepts/exemplar.js';
import type { EditRecord } from '../onnx/history.js';
import type { OnnxModel } from '../onnx/model.js';
import { finetune, type FinetuneOptions, type FinetuneReport } from './finetune.js';
import { checkSetting, methodOf } from './methods.js';
import { rewrite, type RewriteOptions, type RewriteReport } from './rewrite.js';

/**
 * The one entry point for every editing method of the registry (methods.ts), EasyEdit-style:
 * each takes the classifier and the exemplars with its own typed options and returns the edited
 * model, the record appended to its history and a report, so a harness can run them
 * interchangeably. Options are checked against the registry before any work starts.
 */
export type EditOptions =
  | ({ method?: 'rewrite' } & Omit<RewriteOptions, 'spec'>)
  | ({ method: 'finetune-local' | 'finetune-global' } & Omit<FinetuneOptions, 'scope' | 'spec'>);

export interface EditResult {
  model: OnnxModel;
  record: EditRecord;
  report: RewriteReport | FinetuneReport;
}

export async function edit(
  classifier: Classifier,
  exemplars: Exemplar[],
  options: EditOptions = {},
): Promise<EditResult> {
  const { model, spec } = classifier;
  const method = options.method ?? 'rewrite';
  methodOf(method);
  checkSetting(method, options);
  if (options.method === 'finetune-local' || options.method === 'finetune-global') {
    const { method, ...rest } = options;
    return finetune(model, exemplars, {
      ...rest,
      spec,
      scope: method === 'finetune-local' ? 'local' : 'global',
    });
  }
  const { method: _, ...rest } = options as Extract<EditOptions, { method?: 'rewrite' }>;
  if (rest.guard) checkSetting('rewrite', { maxDrop: rest.guard.maxDrop });
  return rewrite(model, exemplars, { ...rest, spec });
}
