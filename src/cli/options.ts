import { RuleditError } from '../errors.js';
import { InvalidArgumentError, Option } from 'commander';
import { PRESETS } from '../data/presets.js';
import { MAX_SIDE } from '../data/preprocess.js';
import { METHODS, type MethodName, type OptionSpec } from '../edit/methods.js';

/** A whole number, any sign: bounds are the caller's (the registry checks a method's own). */
function wholeOption(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || value.trim() === '')
    throw new InvalidArgumentError(`expected a whole number, got '${value}'`);
  return n;
}

/** A non-negative integer option value, rejected with a clear message otherwise. */
export function intOption(value: string): number {
  const n = wholeOption(value);
  if (n < 0) throw new InvalidArgumentError(`expected a whole number >= 0, got '${value}'`);
  return n;
}

export function positiveIntOption(value: string): number {
  const n = wholeOption(value);
  if (n < 1) throw new InvalidArgumentError(`expected a whole number >= 1, got '${value}'`);
  return n;
}

/** An image side in pixels: 1 to MAX_SIDE. */
export function sideOption(value: string): number {
  const n = positiveIntOption(value);
  if (n > MAX_SIDE)
    throw new InvalidArgumentError(`an image side is at most ${MAX_SIDE} pixels, got ${n}`);
  return n;
}

/** A flag given several times: every value, in order. */
export const repeatedOption = (value: string, previous: string[] = []) => [...previous, value];

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
 * declared there; bounds are checked by edit() itself against the same declaration (its errors
 * name the option, main.ts shows the flag), so the parser checks only that a number was given.
 */
export function methodOption(method: MethodName, key: string): Option {
  const o: OptionSpec = (METHODS[method].options as Record<string, OptionSpec>)[key];
  const value = { string: 'name', boolean: 'bool', integer: 'n', number: 'x' }[o.type];
  const option = new Option(`${flagOf(key)} <${value}>`, o.help).default(o.default);
  if (o.choices) return option.choices(o.choices);
  if (o.type === 'integer') return option.argParser(wholeOption);
  if (o.type === 'number') return option.argParser(numberOption);
  return option;
}
