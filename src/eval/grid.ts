import { sha256 } from '../io/digest.js';
import type { EditOptions } from '../edit/edit.js';
import {
  checkKnown,
  checkSetting,
  isMethod,
  methodOf,
  METHOD_NAMES,
  METHODS,
  type MethodName,
  type Setting,
} from '../edit/methods.js';
import { RuleditError } from '../errors.js';

/**
 * A method of the registry (edit/methods.ts) as the harness compares it, EasyEdit-style: a grid
 * of settings of its options, one chosen per case on the validation split. Settings are plain
 * JSON so results files can record them.
 */
export interface MethodGrid {
  /** Name in results and reports (default: the method's). */
  name: string;
  kind: MethodName;
  /** Settings to choose from; one empty setting = the method's defaults. */
  grid: Setting[];
}

export function methodGrid(kind: string, grid: Setting[] = [{}], name?: string): MethodGrid {
  methodOf(kind);
  const k = kind as MethodName;
  if (!Array.isArray(grid) || !grid.length)
    throw new RuleditError(
      'bad-grid',
      `the grid of '${kind}' must be a non-empty list of settings`,
    );
  for (const s of grid) {
    if (typeof s !== 'object' || s === null || Array.isArray(s))
      throw new RuleditError(
        'bad-grid',
        `a setting of '${kind}' must be an object, got ${JSON.stringify(s)}`,
      );
    checkKnown(k, s);
    checkSetting(k, s);
  }
  return { name: name ?? k, kind: k, grid };
}

/** edit() options for one setting; a method that needs a label is told the target class. */
export function editOptions(
  method: MethodGrid,
  setting: Setting,
  shared: { target: number } & Record<string, unknown>,
): EditOptions {
  const { target, ...rest } = shared;
  const needs = METHODS[method.kind];
  // A setting's drop budget belongs to the guard the harness gives (its held-out images).
  const { maxDrop, ...own } = setting;
  const guard =
    !needs.guarded || maxDrop === undefined || !rest.guard
      ? rest.guard
      : { ...(rest.guard as object), maxDrop: maxDrop as number };
  return {
    ...rest,
    ...(needs.guarded ? own : setting),
    ...(needs.guarded ? { guard } : {}),
    ...(needs.needsLabel ? { label: target } : {}),
    method: method.kind,
  } as EditOptions;
}

/**
 * Changes whenever the method's grid changes, defaults included, so a resumed run never reuses
 * lines computed with other settings.
 */
export function methodConfig(method: MethodGrid): string {
  const defaults = Object.fromEntries(
    Object.entries(METHODS[method.kind].options).map(([k, o]) => [k, o.default]),
  );
  const full = method.grid.map((s) => ({ ...defaults, ...s }));
  return sha256(JSON.stringify([method.kind, full])).slice(0, 12);
}

/** A --grid file: { "rewrite": [{...}, ...], "finetune-local": [...] }. */
export function parseGridFile(
  json: unknown,
  where: string,
): Partial<Record<MethodName, Setting[]>> {
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new RuleditError(
      'bad-grid',
      `${where}: a grid file maps method names to lists of settings, e.g. {"finetune-local": [{"lr": 1e-4}, {"lr": 1e-3}]}`,
    );
  for (const key of Object.keys(json))
    if (!isMethod(key))
      throw new RuleditError(
        'bad-grid',
        `${where}: unknown method '${key}' (use ${METHOD_NAMES.join(', ')})`,
      );
  return json as Partial<Record<MethodName, Setting[]>>;
}
