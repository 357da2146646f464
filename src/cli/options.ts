import { InvalidArgumentError } from 'commander';

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
