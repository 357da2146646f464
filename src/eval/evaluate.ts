import type { Classifier } from '../classifier.js';
import { batches } from '../data/batches.js';
import { DEFAULT_BATCH } from '../runtime/session.js';
import type { Dataset } from '../data/dataset.js';
import { RuleditError } from '../errors.js';
import { capture } from '../runtime/capture.js';
import { Accuracy, type AccuracyReport } from './accuracy.js';

export interface EvaluateOptions {
  batchSize?: number;
  threads?: number;
  /** Called after each batch with the number of images it held. */
  onBatch?: (n: number) => void;
  /** A cache folder for the images' decoded pixels, for a data set evaluated again and again. */
  pixelCache?: string;
}

/**
 * Top-1/top-5, per-class accuracy and confusions of a classifier over a labelled data set (class
 * names: the classifier's, else the data set's own).
 */
export async function evaluate(
  classifier: Classifier,
  dataset: Dataset,
  options: EvaluateOptions = {},
): Promise<AccuracyReport> {
  const { model, spec, labels } = classifier;
  const unlabeled = dataset.items.filter((i) => i.label === undefined);
  if (unlabeled.length) {
    throw new RuleditError(
      'bad-dataset',
      `${dataset.root}: ${unlabeled.length} images have no class (e.g. ${unlabeled[0].file}); eval needs a labelled data set (class folders or a labels.csv)`,
    );
  }
  const accuracy = new Accuracy();
  const stream = batches(dataset.items, spec, {
    batchSize: options.batchSize ?? DEFAULT_BATCH,
    pixelCache: options.pixelCache,
  });
  for await (const out of capture(model, [], stream, { threads: options.threads })) {
    const classes = out.logits.dims[out.logits.dims.length - 1];
    const beyond = out.items.find((i) => i.label! >= classes);
    if (beyond)
      throw new RuleditError(
        'bad-labels',
        `${beyond.file} is labelled class ${beyond.label}, but the model has ${classes} classes (0-${classes - 1}): check the data set's class indices`,
      );
    accuracy.add(
      out.logits.data,
      classes,
      out.items.map((i) => i.label!),
    );
    options.onBatch?.(out.items.length);
  }
  const names = (c: number) => labels?.[c] ?? dataset.classNames?.get(c);
  return accuracy.report(names);
}
