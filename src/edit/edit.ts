import type { Exemplar } from '../concepts/exemplar.ts';
import type { EditRecord } from '../onnx/history.ts';
import type { OnnxModel } from '../onnx/model.ts';
import { finetune, type FinetuneOptions, type FinetuneReport } from './finetune.ts';
import { rewrite, type RewriteOptions, type RewriteReport } from './rewrite.ts';

/**
 * The one entry point for every editing method (EasyEdit-style): each takes the model and the
 * exemplars with its own typed options and returns the edited model, the record appended to its
 * history and a report, so an evaluation harness can run them interchangeably.
 */
export type EditOptions =
  | ({ method?: 'rewrite' } & RewriteOptions)
  | ({ method: 'finetune-local' | 'finetune-global' } & Omit<FinetuneOptions, 'scope'>);

export interface EditResult {
  model: OnnxModel;
  record: EditRecord;
  report: RewriteReport | FinetuneReport;
}

export async function edit(
  model: OnnxModel,
  exemplars: Exemplar[],
  options: EditOptions,
): Promise<EditResult> {
  if (options.method === 'finetune-local' || options.method === 'finetune-global') {
    const { method, ...rest } = options;
    return finetune(model, exemplars, {
      ...rest,
      scope: method === 'finetune-local' ? 'local' : 'global',
    });
  }
  const { method: _, ...rest } = options;
  return rewrite(model, exemplars, rest);
}
