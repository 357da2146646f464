import { createHash } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { RuleditError } from '../errors.ts';
import { findBlock, listBlocks } from '../onnx/blocks.ts';
import { appendHistory, readHistory, type EditRecord } from '../onnx/history.ts';
import type { OnnxModel } from '../onnx/model.ts';
import { patchBlock, readWeight } from '../onnx/weights.ts';
import { VERSION } from '../version.ts';

/** What every weight-changing method stores so the change can be audited and reverted exactly. */
export interface WeightChange {
  block: string;
  /** sha256 of the block's float32 weight bytes before and after. */
  weightBefore: string;
  weightAfter: string;
  /** The exact pre-edit weight: raw float32 bytes, deflated, base64. */
  previousWeight: string;
}

export const sha256 = (a: Float32Array) =>
  createHash('sha256')
    .update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength))
    .digest('hex');

/** Patch a block's weight and append the record (with what revert needs) to the history. */
export function applyWeightChange(
  model: OnnxModel,
  blockName: string,
  weight: Float32Array,
  fields: Record<string, unknown> & { method: string },
): { model: OnnxModel; record: EditRecord } {
  const block = findBlock(listBlocks(model.proto.graph!), blockName);
  const before = readWeight(model, block);
  const patched = patchBlock(model, block, { weight });
  const change: WeightChange = {
    block: block.name,
    weightBefore: sha256(before),
    weightAfter: sha256(weight),
    previousWeight: deflateRawSync(
      new Uint8Array(before.buffer, before.byteOffset, before.byteLength),
    ).toString('base64'),
  };
  const record: EditRecord = {
    time: new Date().toISOString(),
    ruleditVersion: VERSION,
    ...fields,
    ...change,
  };
  return { model: appendHistory(patched, record), record };
}

/** Indices (in the history) of the edits still in force: not undone by a later revert. */
export function activeEdits(history: EditRecord[]): number[] {
  const reverted = new Set(
    history.filter((r) => r.method === 'revert').map((r) => r.reverts as number),
  );
  return history.flatMap((r, i) =>
    r.method !== 'revert' && r.previousWeight && !reverted.has(i) ? [i] : [],
  );
}

/**
 * Undo the most recent edit still in force: its block gets back the exact weight bytes it had
 * before, and a 'revert' record is appended. Edits revert in reverse order, one per call.
 */
export function revertLast(model: OnnxModel): {
  model: OnnxModel;
  reverted: EditRecord;
  index: number;
} {
  const history = readHistory(model);
  const active = activeEdits(history);
  if (!active.length)
    throw new RuleditError(
      'no-edit',
      'the model has no edit to revert (see ruledit history MODEL)',
    );
  const index = active[active.length - 1];
  const record = history[index] as EditRecord & WeightChange;
  const block = findBlock(listBlocks(model.proto.graph!), record.block);
  const current = readWeight(model, block);
  if (sha256(current) !== record.weightAfter) {
    throw new RuleditError(
      'changed-since',
      `the weight of '${record.block}' changed after edit #${index} outside ruledit; refusing to revert it`,
    );
  }
  const bytes = inflateRawSync(Buffer.from(record.previousWeight, 'base64'));
  const previous = new Float32Array(
    bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length),
  );
  if (sha256(previous) !== record.weightBefore)
    throw new RuleditError('bad-history', `edit #${index}'s stored weight is damaged`);
  const patched = patchBlock(model, block, { weight: previous });
  const revert: EditRecord = {
    method: 'revert',
    time: new Date().toISOString(),
    ruleditVersion: VERSION,
    reverts: index,
    block: record.block,
  };
  return { model: appendHistory(patched, revert), reverted: record, index };
}
