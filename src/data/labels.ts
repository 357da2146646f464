import { readFile } from 'node:fs/promises';
import { RuleditError } from '../errors.js';

/** Class names, one per line: line i (from 0) names class i. */
export async function loadLabels(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new RuleditError('not-found', `labels file not found: ${path}`);
  }
  const lines = text.split(/\r?\n/);
  while (lines.length && lines[lines.length - 1].trim() === '') lines.pop();
  return lines.map((l) => l.trim());
}

/** The short form of a label ('tench, Tinca tinca' -> 'tench') for tables. */
export function shortLabel(label: string): string {
  return label.split(',')[0].trim();
}
