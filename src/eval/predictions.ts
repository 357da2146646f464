import { batches } from '../data/batches.js';
import { DEFAULT_BATCH } from '../runtime/session.js';
import type { PreprocessSpec } from '../data/preprocess.js';
import type { OnnxModel } from '../onnx/model.js';
import { capture } from '../runtime/capture.js';
import { top1Rows } from '../runtime/logits.js';

export interface PredictOptions {
  batchSize?: number;
  threads?: number;
  onBatch?: (n: number) => void;
}

/** Top-1 class of each image file, in order (one ONNX Runtime session for the whole list). */
export async function predictFiles(
  model: OnnxModel,
  files: string[],
  spec: PreprocessSpec,
  options: PredictOptions = {},
): Promise<Int32Array> {
  const out = new Int32Array(files.length);
  if (!files.length) return out;
  const items = files.map((file, i) => ({ file, i }));
  const stream = batches(items, spec, { batchSize: options.batchSize ?? DEFAULT_BATCH });
  for await (const b of capture(model, [], stream, { threads: options.threads })) {
    const top1 = top1Rows(b.logits);
    b.items.forEach((item, row) => (out[item.i] = top1[row]));
    options.onBatch?.(b.items.length);
  }
  return out;
}

/**
 * Predictions of one (unchanging) model, remembered by file: the original model's predictions
 * on an image are computed once, however many cases, methods and seeds use that image.
 */
export class PredictionCache {
  private readonly known = new Map<string, number>();
  constructor(
    private readonly model: OnnxModel,
    private readonly spec: PreprocessSpec,
    private readonly options: PredictOptions = {},
  ) {}

  /** A prediction made elsewhere with the same model (a capture of its tail's inputs). */
  remember(file: string, cls: number): void {
    this.known.set(file, cls);
  }

  async predict(files: string[]): Promise<Int32Array> {
    const missing = [...new Set(files.filter((f) => !this.known.has(f)))];
    const preds = await predictFiles(this.model, missing, this.spec, this.options);
    missing.forEach((f, i) => this.known.set(f, preds[i]));
    return Int32Array.from(files, (f) => this.known.get(f)!);
  }
}
