import { RuleditError } from '../errors.js';
import { InvalidArgumentError, Option } from 'commander';
import { PRESETS } from '../data/presets.js';
import { METHODS, type MethodName, type OptionSpec } from '../edit/methods.js';

/** A non-negative integer option value, rejected with a clear message otherwise. */
export function intOption(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError(`expected a whole number >= 0, got '${value}'`);
  return n;
}

export function positiveIntOption(value: string): number {
  const n = intOption(value);
  if (n === 0) throw new InvalidArgumentError('expected a whole number >= 1');
  return n;
}

export function numberOption(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || value.trim() === '')
    throw new InvalidArgumentError(`expected a number, got '${value}'`);
  return n;
}

// Options several commands share, defined once so their wording and defaults agree.
export const preprocessOption = () =>
  new Option(
    '--preprocess <spec>',
    `a preprocess.json, or a preset (${Object.keys(PRESETS).join(', ')}); default: the one an edited model carries, else preprocess.json next to the model`,
  );
export const labelsOption = () =>
  new Option(
    '--labels <file>',
    'class names, one per line (default: the ones an edited model carries, else labels.txt next to the model)',
  );
export const threadsOption = () =>
  new Option('--threads <n>', 'ONNX Runtime threads (0 = one per core)')
    .argParser(intOption)
    .default(0);
export const cacheOption = () =>
  new Option('--cache <dir>', 'cache folder (default $RULEDIT_CACHE or ~/.cache/ruledit)');

/** `--refresh`: what the command caches is recomputed (once in this run), not read back. */
export const refreshOption = (what: string) =>
  new Option('--refresh', `recompute ${what} even if cached`).default(false);

/** The caches of this process: with --queue the workers keep their own (their --cache folders). */
export function checkRefresh(opts: { refresh?: boolean; queue?: string }): void {
  if (opts.refresh && opts.queue)
    throw new RuleditError(
      'bad-option',
      "--refresh recomputes this machine's caches, but with --queue the workers compute from theirs: clear the workers' --cache folders instead",
    );
}

export const queueOption = () =>
  new Option(
    '--queue <url>',
    "run the work on 'ruledit worker' processes through a BullMQ queue in Redis: redis://HOST:PORT/DB",
  );

/** The flag of a library option: `--max-drop` for maxDrop, `--guard-data` for guard.data. */
export const flagOf = (key: string) =>
  `--${key.replace(/\./g, '-').replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/**
 * A flag for an option of the registry of methods, with its help, default and choices as
 * declared there; bounds are checked by edit() itself (its errors name the option, main.ts
 * shows the flag).
 */
export function methodOption(method: MethodName, key: string): Option {
  const o: OptionSpec = (METHODS[method].options as Record<string, OptionSpec>)[key];
  const value = { string: 'name', boolean: 'bool', integer: 'n', number: 'x' }[o.type];
  const option = new Option(`${flagOf(key)} <${value}>`, o.help).default(o.default);
  if (o.choices) return option.choices(o.choices);
  if (o.type === 'integer') return option.argParser(intOption);
  if (o.type === 'number') return option.argParser(numberOption);
  return option;
}
