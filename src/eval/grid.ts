import { createHash } from 'node:crypto';
import type { EditOptions } from '../edit/edit.ts';
import { RuleditError } from '../errors.ts';

/**
 * The editing methods the harness compares, EasyEdit-style: each is a kind (the edit() method)
 * with a grid of hyperparameter settings; the harness picks one setting per case on the
 * validation split. Settings are plain JSON so results files can record them.
 */
export type MethodKind = 'rewrite' | 'finetune-local' | 'finetune-global';
export type Setting = Record<string, string | number | boolean>;

export interface MethodSpec {
  /** Name in results and reports (default: the kind). */
  name: string;
  kind: MethodKind;
  /** Settings to choose from; one empty setting = the method's defaults. */
  grid: Setting[];
}

export const METHOD_KINDS: MethodKind[] = ['rewrite', 'finetune-local', 'finetune-global'];

/** Option names a setting may give, per kind (the rest of EditOptions is the harness's job). */
const KEYS: Record<MethodKind, Record<string, 'string' | 'number' | 'boolean'>> = {
  rewrite: {
    layer: 'string',
    rank: 'number',
    useMask: 'boolean',
    solver: 'string',
    lr: 'number',
    steps: 'number',
    projectEvery: 'number',
    penalty: 'number',
    whiteningFloor: 'number',
    strength: 'number',
    maxFlips: 'number',
  },
  'finetune-local': { layer: 'string', steps: 'number', lr: 'number', optimizer: 'string' },
  'finetune-global': { layer: 'string', steps: 'number', lr: 'number', optimizer: 'string' },
};

/** The published settings (METHOD.md 5-6): the rewrite with our exact solver; SGD 400 x 1e-4. */
export const DEFAULT_GRIDS: Record<MethodKind, Setting[]> = {
  rewrite: [{}],
  'finetune-local': [{ steps: 400, lr: 1e-4, optimizer: 'sgd' }],
  'finetune-global': [{ steps: 400, lr: 1e-4, optimizer: 'sgd' }],
};

export function methodSpec(kind: string, grid?: Setting[], name?: string): MethodSpec {
  if (!METHOD_KINDS.includes(kind as MethodKind))
    throw new RuleditError(
      'bad-method',
      `unknown method '${kind}': use ${METHOD_KINDS.join(', ')}`,
    );
  const k = kind as MethodKind;
  const settings = grid ?? DEFAULT_GRIDS[k];
  if (!Array.isArray(settings) || !settings.length)
    throw new RuleditError(
      'bad-grid',
      `the grid of '${kind}' must be a non-empty list of settings`,
    );
  for (const s of settings) checkSetting(k, s);
  return { name: name ?? k, kind: k, grid: settings };
}

function checkSetting(kind: MethodKind, s: Setting): void {
  if (typeof s !== 'object' || s === null || Array.isArray(s))
    throw new RuleditError(
      'bad-grid',
      `a setting of '${kind}' must be an object, got ${JSON.stringify(s)}`,
    );
  for (const [key, value] of Object.entries(s)) {
    const type = KEYS[kind][key];
    if (!type)
      throw new RuleditError(
        'bad-grid',
        `'${key}' is not a setting of ${kind}; known: ${Object.keys(KEYS[kind]).join(', ')}`,
      );
    if (typeof value !== type)
      throw new RuleditError(
        'bad-grid',
        `setting '${key}' of ${kind} must be a ${type}, got ${JSON.stringify(value)}`,
      );
  }
}

/** edit() options for one setting; fine-tuning is told the target class (the edit needs none). */
export function editOptions(
  spec: MethodSpec,
  setting: Setting,
  shared: { target: number } & Record<string, unknown>,
): EditOptions {
  const { target, ...rest } = shared;
  if (spec.kind === 'rewrite') {
    // A setting's flip budget belongs to the guard the harness gives (its held-out images).
    const { maxFlips, ...own } = setting;
    const guard =
      maxFlips === undefined || !rest.guard
        ? rest.guard
        : { ...(rest.guard as object), maxFlips: maxFlips as number };
    return { ...rest, ...own, guard, method: 'rewrite' } as EditOptions;
  }
  return { ...rest, ...setting, method: spec.kind, label: target } as EditOptions;
}

/** Changes whenever the method's kind or grid changes, so a resumed run never reuses stale lines. */
export function methodConfig(spec: MethodSpec): string {
  return createHash('sha256')
    .update(JSON.stringify([spec.kind, spec.grid]))
    .digest('hex')
    .slice(0, 12);
}

/** A --grid file: { "rewrite": [{...}, ...], "finetune-local": [...] }. */
export function parseGridFile(
  json: unknown,
  where: string,
): Partial<Record<MethodKind, Setting[]>> {
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new RuleditError(
      'bad-grid',
      `${where}: a grid file maps method names to lists of settings, e.g. {"finetune-local": [{"lr": 1e-4}, {"lr": 1e-3}]}`,
    );
  for (const key of Object.keys(json))
    if (!METHOD_KINDS.includes(key as MethodKind))
      throw new RuleditError('bad-grid', `${where}: unknown method '${key}'`);
  return json as Partial<Record<MethodKind, Setting[]>>;
}
