// Shared by the HTML, CSV and chart writers so a missing number reads the same everywhere.

export const NA = 'n/a';

/** NaN and null mean "nothing to measure" (e.g. no errors to fix), which is not 0. */
export function isMissing(v: unknown): v is null | undefined {
  return v === null || v === undefined || (typeof v === 'number' && Number.isNaN(v));
}

/** A number for people: integers as they are, others with `digits` decimals; NaN/null -> 'n/a'. */
export function formatNumber(v: number | null | undefined, digits = 2): string {
  if (isMissing(v)) return NA;
  if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
  return Number.isInteger(v) ? String(v) : v.toFixed(digits);
}

/** A table cell for people. */
export function formatCell(v: string | number | null | undefined, digits = 2): string {
  return typeof v === 'string' ? v : formatNumber(v, digits);
}

const ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Text for HTML element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c]);
}

/** The mean of the numbers that are present, or NaN when none is. */
export function meanPresent(values: (number | null | undefined)[]): number {
  const xs = values.filter((v): v is number => !isMissing(v) && Number.isFinite(v));
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}
