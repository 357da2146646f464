import { writeFileAtomic } from '../io/atomic.ts';
import type { OnnxModel } from './model.ts';
import { serializeModel } from './model.ts';

/** Write a model atomically; never over the file it was loaded from, never over another unless forced. */
export async function saveModel(
  model: OnnxModel,
  out: string,
  options: { force?: boolean } = {},
): Promise<void> {
  await writeFileAtomic(out, serializeModel(model.proto), {
    force: options.force,
    protect: [model.path],
  });
}
