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
