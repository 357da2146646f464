import type { DiscoveryCell } from '../eval/discover.js';
import type { MethodResult } from '../eval/results.js';

export type { DiscoveryCell, MethodResult };
// What every producer (evaluation harness, rule discovery, demo, scripts) hands to writeReport.
// Numbers are plain numbers; NaN or null means "nothing to measure" and is shown as 'n/a', never 0.

/** One exemplar or test image: the original, its concept mask and the transformed image. */
export interface ReportExample {
  caption: string;
  /** Encoded image bytes (PNG; JPEG and WebP are accepted too). */
  original: Buffer;
  mask?: Buffer;
  /** What the greyscale image shows (default 'mask'; a context match's heat map, say). */
  maskLabel?: string;
  transformed?: Buffer;
  /** Prediction before and after the edit, e.g. 'school bus 91%'. */
  before?: string;
  after?: string;
}

export interface ReportTable {
  title: string;
  columns: string[];
  rows: (string | number | null)[][];
  note?: string;
  /** Also draw the table as grouped bars: one group per row, one bar per `values` column. */
  chart?: TableChart;
}

export interface TableChart {
  /** Column that names each group (e.g. 'class'). */
  label: string;
  /** Numeric columns drawn as bars side by side (e.g. ['before (%)', 'after (%)']). */
  values: string[];
  /** Title of the value axis; default: the table's title. */
  axis?: string;
}

/** One editing method on one case: errors corrected in percent (docs/method.md section 9). */
export interface ReportData {
  title: string;
  /** ISO time; writeReport fills it in (and stores it) when missing. */
  created?: string;
  /** Paragraphs shown under the title. */
  summary?: string[];
  examples?: ReportExample[];
  tables?: ReportTable[];
  methods?: MethodResult[];
  discovery?: DiscoveryCell[];
}

/** The four errors-corrected numbers of a MethodResult, in the order reports show them. */
export const MEASURES = [
  { key: 'targetSame', label: 'target class, same style', short: 'target / same' },
  { key: 'targetHeldout', label: 'target class, held-out styles', short: 'target / held-out' },
  { key: 'otherSame', label: 'other classes, same style', short: 'other / same' },
  { key: 'otherHeldout', label: 'other classes, held-out styles', short: 'other / held-out' },
] as const;
