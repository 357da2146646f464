// Everything the server sends the page, declared once: the server's routes and tasks are typed
// with these and the page (web/) reads them. Type-only imports, so the browser build shares it.
import type { GuardReport } from '../edit/guard-report.js';
import type { MethodName, MethodSpec } from '../edit/methods.js';

export type { GuardFigures, GuardReport } from '../edit/guard-report.js';
export type { MethodName, MethodSpec } from '../edit/methods.js';

/** One of a model's top classes on an image. */
export interface Prediction {
  class: number;
  label: string;
  /** Softmax probability in percent. */
  p: number;
}

/** A row of the block table (`ruledit inspect` with the grids the page needs). */
export interface BlockRow {
  index: number;
  name: string;
  chain: string;
  weight: string;
  spatial: string;
  /** The key's grid (rows x columns): the resolution the mask is brought to. */
  keyGrid: string;
  /** The block `auto` edits. */
  auto: boolean;
  editable: boolean;
  reason?: string;
}

/** An edit of the model's history, and whether it is still in effect. */
export interface HistoryRow {
  index: number;
  method: string;
  block?: string;
  time: string;
  active: boolean;
  reverts?: number;
}

/** GET /api/info: the model, its blocks, the choices the page offers. */
export interface ServerInfo {
  model: string;
  builtin: boolean;
  size: [number, number];
  labels: string[];
  blocks: BlockRow[];
  styles: readonly string[];
  /** Images per built-in style: a style edit uses one exemplar per image. */
  styleImages: number;
  samples: { id: string; caption: string }[];
  data: { folder: number; name: string }[];
  /** The registry of methods: every control's default and bounds come from it. */
  methods: Record<MethodName, MethodSpec>;
  history: HistoryRow[];
}

/** POST /api/images: an image as the model sees it, with the masks it came with. */
export interface LoadedImage {
  id: string;
  name: string;
  width: number;
  height: number;
  png: string;
  masks: Record<string, number[]>;
  top5: Prediction[];
}

/** POST /api/preview: x' and every exemplar the edit would use, with the model's predictions. */
export interface PreviewResult {
  png: string;
  top5: { x: Prediction[]; xPrime: Prediction[] };
  exemplars: { png: string; top1: Prediction }[];
}

/** A job as the page follows it (GET /api/jobs, the event stream). */
export interface JobView {
  id: string;
  kind: string;
  state: 'queued' | 'running' | 'done' | 'failed' | 'cancelled';
  progress: number;
  message: string;
  result?: unknown;
  error?: string;
  /** The RuleditError code of a failure (e.g. 'guard-rejected'), for the page to tell kinds apart. */
  code?: string;
}

/** What an edit job gives the page: its safety figures, the exemplars before and after, the evaluation. */
export interface EditView extends EditSafety {
  block: string;
  report: unknown;
  /** Top-5 on the first exemplar's x' (the one the preview shows). */
  xPrime: { before: Prediction[]; after: Prediction[] };
  /** Top-1 on every exemplar's x', before and after. */
  exemplars: { before: Prediction; after: Prediction }[];
  evaluation: Evaluation;
  history: HistoryRow[];
}

/** One method's line of a comparison. */
export interface CompareRow {
  method: string;
  block: string;
  seconds: number;
  xPrimeTop1: string;
  testAfter: number;
  cleanAfter: number;
  cleanDrop: number;
  fixedCount: number;
  brokenCount: number;
  /** The guarded method's kept strength and flip rate on the guard images. */
  strength?: number;
  flipRate?: number;
  /** Why the method changed nothing (the guard refused it). */
  rejected?: string;
}

export interface Thumb {
  src: string;
  truth: string;
  before: string;
  after: string;
}

export interface Evaluation {
  testTitle: string;
  cleanTitle: string;
  perClass: { class: number; name: string; n: number; before: number; after: number }[];
  testBefore: number;
  testAfter: number;
  cleanBefore: number;
  cleanAfter: number;
  /** Points of clean accuracy lost (negative: gained). */
  cleanDrop: number;
  fixed: Thumb[];
  broken: Thumb[];
  fixedCount: number;
  brokenCount: number;
}

/** What an edit did beyond the evaluation: the rewrite's guard, kept strength and key grid. */
export interface EditSafety {
  /** Absent for fine-tuning, which has no guard. */
  guard?: GuardReport;
  /** Fraction of the solved change applied (1: all of it). */
  strength?: number;
  /** The edited block's key grid and how many of its cells the mask touches. */
  keyGrid?: { height: number; width: number; masked: number };
  /** One line for people: the guard's figures, or why there are none. */
  guardText: string;
}

/** Where the exemplar's context matches among the test folders' images, before any edit. */
export interface MatchResult {
  block: string;
  /** Key grid of the block, e.g. '8x8'. */
  grid: string;
  /** The best matches, best first; `heat` is the match per key position (white: 1 or more). */
  shown: {
    name: string;
    folder: 'test' | 'clean';
    score: number;
    /** The model's top-1 on the image when it was matched. */
    top1: string;
    src: string;
    heat: string;
  }[];
  /** Share (%) of test-folder images among the shown matches, and among all images searched. */
  testShare: { shown: number; all: number };
  titles: { test: string; clean: string };
}

/** The shown matches' top-1 when matched and now (after edits), in the panel's order. */
export interface MatchChanges {
  before: string[];
  after: string[];
}
