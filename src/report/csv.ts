import { isMissing, NA } from './format.js';
import type { DiscoveryCell, MethodResult, ReportTable } from './types.js';
import { MEASURES } from './types.js';

type Cell = string | number | null | undefined;

/**
 * RFC 4180 CSV: a field is quoted when it holds a comma, quote, line break or edge spaces, and
 * quotes are doubled. Numbers keep full precision; NaN/null is written 'n/a' (not 0, not empty)
 * so "nothing to fix" cannot be mistaken for a measured value. Lines end with \n.
 */
export function toCsv(columns: string[], rows: Cell[][]): string {
  return [columns, ...rows].map((row) => row.map(csvField).join(',')).join('\n') + '\n';
}

export function csvField(v: Cell): string {
  let text: string;
  if (typeof v === 'number') {
    if (isMissing(v)) return NA;
    text = Number.isFinite(v) ? String(v) : v > 0 ? 'inf' : '-inf';
  } else if (isMissing(v)) {
    return NA;
  } else {
    text = v;
  }
  return /[",\r\n]|^\s|\s$/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function methodsCsv(methods: MethodResult[]): string {
  return toCsv(
    ['method', 'case', ...MEASURES.map((m) => m.key), 'cleanDrop'],
    methods.map((m) => [m.method, m.case ?? '', ...MEASURES.map((k) => m[k.key]), m.cleanDrop]),
  );
}

export function discoveryCsv(cells: DiscoveryCell[]): string {
  return toCsv(
    ['concept', 'class', 'drop', 'images'],
    rankDiscovery(cells).map((c) => [c.concept, c.className, c.drop, c.images]),
  );
}

export function tableCsv(table: ReportTable): string {
  return toCsv(table.columns, table.rows);
}

/** Largest accuracy drop first (the rules the model leans on most); missing drops last. */
export function rankDiscovery(cells: DiscoveryCell[]): DiscoveryCell[] {
  const key = (c: DiscoveryCell) => (isMissing(c.drop) ? -Infinity : c.drop);
  return [...cells].sort(
    (a, b) =>
      key(b) - key(a) ||
      a.concept.localeCompare(b.concept) ||
      a.className.localeCompare(b.className),
  );
}

/** 'table-2-per-class-top-1.csv': numbered so two tables with one title cannot collide. */
export function tableFileName(index: number, title: string): string {
  // Whole words up to 40 characters: a name cut mid-word reads as a typo.
  const words = title
    .toLowerCase()
    .normalize('NFKD')
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
  let slug = '';
  for (const w of words) {
    const next = slug ? `${slug}-${w}` : w;
    if (next.length > 40) break;
    slug = next;
  }
  if (!slug && words.length) slug = words[0].slice(0, 40);
  return `table-${index + 1}${slug ? `-${slug}` : ''}.csv`;
}
