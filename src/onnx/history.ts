import { RuleditError } from '../errors.js';
import type { OnnxModel } from './model.js';
import { readMetadata, withMetadata } from './metadata.js';

/** The metadata_props key under which ruledit keeps its edit history (a JSON array). */
export const HISTORY_KEY = 'ruledit.history';

/** One entry of the history. Editing methods add their own fields (block, direction, losses...). */
export interface EditRecord {
  /** 'rewrite', 'finetune-local', ... or 'save' for a plain re-save. */
  method: string;
  /** ISO time of the edit. */
  time: string;
  ruleditVersion: string;
  [field: string]: unknown;
}

export function readHistory(model: OnnxModel): EditRecord[] {
  const value = readMetadata(model, HISTORY_KEY);
  if (!value) return [];
  try {
    const parsed: unknown = JSON.parse(value);
    if (!Array.isArray(parsed)) throw new Error('not an array');
    return parsed as EditRecord[];
  } catch (e) {
    throw new RuleditError(
      'bad-history',
      `the model's '${HISTORY_KEY}' metadata is not a JSON array of edits (${(e as Error).message})`,
    );
  }
}

/** A copy of the model with `record` appended to its history; other metadata is kept. */
export function appendHistory(model: OnnxModel, record: EditRecord): OnnxModel {
  return withHistory(model, [...readHistory(model), record]);
}

/** A copy of the model with this history; other metadata is kept. */
export function withHistory(model: OnnxModel, history: EditRecord[]): OnnxModel {
  return withMetadata(model, HISTORY_KEY, JSON.stringify(history));
}
