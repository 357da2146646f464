import { sha256 } from '../io/digest.js';
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
