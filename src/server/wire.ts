// What an evaluation looks like on the wire: the server (tasks.ts) sends it and the page
// (web/main.ts) draws it. No imports, so the browser build can share it.

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

/** What the safety guard measured at one strength (src/edit/guard.ts GuardFigures). */
export interface GuardTrial {
  strength: number;
  flips: number;
  /** Percent of the guard images whose top-1 changed. */
  flipRate: number;
  /** Mean KL(p_original || p_edited) over the guard images, nats. */
  meanKL: number;
  /** The clean top-1 drop (points) the edit is expected to cost: what the budget is on. */
  estimatedDrop: number;
  accuracy?: number;
}

/** The guard's report of a rewrite (src/edit/guard.ts GuardReport). */
export interface GuardFigures extends GuardTrial {
  images: number;
  /** The budget on the estimated drop, points. */
  maxDrop: number;
  /** Temperature the model's probabilities were calibrated with (1: uncalibrated, no labels). */
  temperature: number;
  source: string;
  accuracyBefore?: number;
  /** Every strength tried; the first is the solved edit at full strength. */
  trials: GuardTrial[];
}

/** What an edit did beyond the evaluation: the rewrite's guard, kept strength and key grid. */
export interface EditSafety {
  /** Absent for fine-tuning, which has no guard. */
  guard?: GuardFigures;
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
