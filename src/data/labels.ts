import { readInput } from '../io/read-input.js';

/** Class names, one per line: line i (from 0) names class i. */
export async function loadLabels(path: string): Promise<string[]> {
  const lines = (await readInput(path, 'labels file')).toString('utf8').split(/\r?\n/);
  while (lines.length && lines[lines.length - 1].trim() === '') lines.pop();
  return lines.map((l) => l.trim());
}

/** The short form of a label ('tench, Tinca tinca' -> 'tench') for tables. */
export function shortLabel(label: string): string {
  return label.split(',')[0].trim();
}
