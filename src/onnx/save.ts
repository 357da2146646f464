import { writeFileAtomic } from '../io/atomic.js';
import type { OnnxModel } from './model.js';
import { serializeModel } from './model.js';

/**
 * Write a model atomically; never over the file it was loaded from or another input (`protect`),
 * never over another file unless forced.
 */
export async function saveModel(
  model: OnnxModel,
  out: string,
  options: { force?: boolean; protect?: (string | undefined)[] } = {},
): Promise<void> {
  await writeFileAtomic(out, serializeModel(model.proto), {
    force: options.force,
    protect: [model.path, ...(options.protect ?? [])],
  });
}
