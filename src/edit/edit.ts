import type { Exemplar } from '../concepts/exemplar.ts';
import type { EditRecord } from '../onnx/history.ts';
import type { OnnxModel } from '../onnx/model.ts';
import { rewrite, type RewriteOptions, type RewriteReport } from './rewrite.ts';

/**
 * The one entry point for every editing method (EasyEdit-style): each method takes the model and
 * the exemplars and returns the edited model, the record appended to its history and a report.
 * The fine-tuning baselines plug in here as further `method`s.
 */
export type EditOptions = { method?: 'rewrite' } & RewriteOptions;

export interface EditResult {
  model: OnnxModel;
  record: EditRecord;
  report: RewriteReport;
}

export async function edit(
  model: OnnxModel,
  exemplars: Exemplar[],
  options: EditOptions,
): Promise<EditResult> {
  const { method = 'rewrite', ...rest } = options;
  switch (method) {
    case 'rewrite':
      return rewrite(model, exemplars, rest);
  }
}
