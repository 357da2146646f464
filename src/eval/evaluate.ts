import { batches } from '../data/batches.ts';
import type { Dataset } from '../data/dataset.ts';
import type { PreprocessSpec } from '../data/preprocess.ts';
import { RuleditError } from '../errors.ts';
import type { OnnxModel } from '../onnx/model.ts';
import { capture } from '../runtime/capture.ts';
import { Accuracy, type AccuracyReport } from './accuracy.ts';

export interface EvaluateOptions {
  batchSize?: number;
  threads?: number;
  /** Class names for the report (labels.txt), else the data set's own. */
  labels?: string[];
  /** Called after each batch with the number of images it held. */
  onBatch?: (n: number) => void;
}

/** Top-1/top-5, per-class accuracy and confusions of a model over a labelled data set. */
export async function evaluate(
  model: OnnxModel,
  dataset: Dataset,
  spec: PreprocessSpec,
  options: EvaluateOptions = {},
): Promise<AccuracyReport> {
  const unlabeled = dataset.items.filter((i) => i.label === undefined);
  if (unlabeled.length) {
    throw new RuleditError(
      'bad-dataset',
      `${dataset.root}: ${unlabeled.length} images have no class (e.g. ${unlabeled[0].file}); eval needs a labelled data set (class folders or a labels.csv)`,
    );
  }
  const accuracy = new Accuracy();
  const stream = batches(dataset.items, spec, { batchSize: options.batchSize ?? 32 });
  for await (const out of capture(model, [], stream, { threads: options.threads })) {
    const classes = out.logits.dims[out.logits.dims.length - 1];
    accuracy.add(
      out.logits.data,
      classes,
      out.items.map((i) => i.label!),
    );
    options.onBatch?.(out.items.length);
  }
  const names = (c: number) => options.labels?.[c] ?? dataset.classNames?.get(c);
  return accuracy.report(names);
}
