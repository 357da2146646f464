import type { OnnxModel } from './model.js';
import { modelFromProto } from './model.js';

/** A value of the model's metadata_props, if set. */
export function readMetadata(model: OnnxModel, key: string): string | undefined {
  return (model.proto.metadataProps ?? []).find((p) => p.key === key)?.value ?? undefined;
}

/** A copy of the model with one metadata_props entry set (others kept, in order). */
export function withMetadata(model: OnnxModel, key: string, value: string): OnnxModel {
  const others = (model.proto.metadataProps ?? []).filter((p) => p.key !== key);
  return {
    ...modelFromProto({ ...model.proto, metadataProps: [...others, { key, value }] }),
    path: model.path,
  };
}
