import { existsSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { RuleditError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { discoveryCsv, methodsCsv, tableCsv, tableFileName } from './csv.js';
import { renderHtml } from './html.js';
import { reportToJson } from './json.js';
import type { ReportData } from './types.js';

export interface WriteReportOptions {
  /** Replace the files of an earlier report in the same folder. */
  force?: boolean;
  /** Files that must never be written (e.g. the report.json being re-rendered). */
  protect?: string[];
}

export interface WrittenReport {
  html: string;
  json: string;
  csv: string[];
}

/**
 * Write a report into `dir` (created if missing): report.html (self-contained), report.json (the
 * data, images inline as base64), methods.csv and discovery.csv when there are rows, and one
 * table-N-title.csv per table. Everything is rendered, and every existing file checked, before
 * the first file is written.
 */
/**
 * The checks of `writeReport` that need no data, for a command to make before its work: a file
 * in the folder's place, or a report already there without `force`.
 */
export function checkReportDir(dir: string, options: { force?: boolean } = {}): void {
  const root = resolve(dir);
  if (existsSync(root) && !statSync(root).isDirectory())
    throw new RuleditError('bad-output', `${dir} is a file; give a folder for the report`);
  const existing = ['report.html', 'report.json'].filter((n) => existsSync(join(root, n)));
  if (!options.force && existing.length)
    throw new RuleditError(
      'exists',
      `${dir} already holds a report (${existing.join(', ')}); pass \`force\` to replace it`,
    );
}

export async function writeReport(
  data: ReportData,
  dir: string,
  options: WriteReportOptions = {},
): Promise<WrittenReport> {
  const root = resolve(dir);
  checkReportDir(dir, { force: true });
  const full: ReportData = { ...data, created: data.created ?? new Date().toISOString() };
  // A CSV only for what the report holds: no header-only files.
  const csv: [string, string][] = [
    ...(full.methods?.length
      ? [['methods.csv', methodsCsv(full.methods)] as [string, string]]
      : []),
    ...(full.discovery?.length
      ? [['discovery.csv', discoveryCsv(full.discovery)] as [string, string]]
      : []),
    ...(full.tables ?? []).map((t, i): [string, string] => [
      tableFileName(i, t.title),
      tableCsv(t),
    ]),
  ];
  const files: [string, string][] = [
    ...csv,
    ['report.json', reportToJson(full)],
    ['report.html', await renderHtml(full, { files: ['report.json', ...csv.map(([n]) => n)] })],
  ];
  const protect = (options.protect ?? []).map((p) => resolve(p));
  for (const [name] of files) {
    const path = join(root, name);
    if (protect.includes(path))
      throw new RuleditError(
        'same-as-input',
        `refusing to overwrite the input file ${path}; write the report to another folder`,
      );
  }
  if (!options.force) {
    const existing = files.map(([n]) => n).filter((n) => existsSync(join(root, n)));
    if (existing.length)
      throw new RuleditError(
        'exists',
        `${dir} already holds a report (${existing.join(', ')}); pass \`force\` to replace it`,
      );
  }
  await mkdir(root, { recursive: true });
  // The HTML comes last: a reader that sees it finds its JSON and CSV files complete.
  for (const [name, text] of files)
    await writeFileAtomic(join(root, name), text, { force: options.force });
  return {
    html: join(root, 'report.html'),
    json: join(root, 'report.json'),
    csv: csv.map(([n]) => join(root, n)),
  };
}
