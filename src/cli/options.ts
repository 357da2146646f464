import { InvalidArgumentError, Option } from 'commander';

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
    '--preprocess <file>',
    'preprocessing spec (default: preprocess.json next to the model, else the one an edited model carries)',
  );
export const labelsOption = () =>
  new Option(
    '--labels <file>',
    'class names, one per line (default: labels.txt next to the model, else the ones an edited model carries)',
  );
export const threadsOption = () =>
  new Option('--threads <n>', 'ONNX Runtime threads (0 = one per core)')
    .argParser(intOption)
    .default(0);
export const cacheOption = () =>
  new Option('--cache <dir>', 'cache folder (default $RULEDIT_CACHE or ~/.cache/ruledit)');
