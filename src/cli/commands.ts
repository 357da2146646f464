import type { Command } from 'commander';
import { METHODS } from '../edit/methods.js';

interface CommandEntry {
  /** The line `ruledit --help` shows, and the command's own description. */
  about: string;
  /** The module that declares the command's options and runs it (with the commands beside it). */
  load: () => Promise<(program: Command) => void>;
}

/**
 * Every command, declared once. A command's module (and the ONNX Runtime, TF.js and sharp it
 * pulls in) is loaded only when that command runs, so `ruledit --version` and `ruledit --help`
 * start as fast as commander itself (bench/cli-start.ts).
 */
export const COMMANDS = {
  demo: {
    about:
      'the whole method on the built-in scene model: vehicles fail on snowy roads, one exemplar rewrites one block, measured against fine-tuning; then a typographic sticker attack and its fix',
    load: () => import('./demo.js').then((m) => m.registerDemo),
  },
  inspect: {
    about: 'list the editable blocks of an ONNX classifier (docs/method.md section 4)',
    load: () => import('./inspect.js').then((m) => m.registerInspect),
  },
  predict: {
    about: 'top-K classes of a classifier for each image',
    load: () => import('./predict.js').then((m) => m.registerPredict),
  },
  eval: {
    about:
      'accuracy of a classifier on a labelled data set (class folders, labels.csv or a CSV manifest)',
    load: () => import('./eval.js').then((m) => m.registerEval),
  },
  stats: {
    about: "second moment of a block's keys over reference images, and its whitening (cached)",
    load: () => import('./stats.js').then((m) => m.registerStats),
  },
  edit: {
    about: METHODS.rewrite.summary,
    load: () => import('./edit.js').then((m) => m.registerEdit),
  },
  finetune: {
    about:
      'baseline: fine-tune toward a label on the transformed exemplars (docs/method.md section 8)',
    load: () => import('./edit.js').then((m) => m.registerEdit),
  },
  retrain: {
    about: METHODS['retrain-last'].summary,
    load: () => import('./edit.js').then((m) => m.registerEdit),
  },
  history: {
    about: "the edits recorded in a model's metadata",
    load: () => import('./history.js').then((m) => m.registerHistory),
  },
  strip: {
    about:
      "drop the undo data of every recorded edit (the old weights' copies), keeping the summaries: a smaller model to deploy, whose edits can no longer be reverted",
    load: () => import('./history.js').then((m) => m.registerHistory),
  },
  revert: {
    about: 'undo the most recent edit still in force, restoring the exact pre-edit weights',
    load: () => import('./history.js').then((m) => m.registerHistory),
  },
  match: {
    about:
      "where the exemplar's context is found in other images, before any edit: each key's match with the direction the rewrite would edit along, as heat maps and a ranking",
    load: () => import('./match.js').then((m) => m.registerMatch),
  },
  synth: {
    about: 'the synthetic scene world: train the built-in model, write scenes and styles',
    load: () => import('./synth.js').then((m) => m.registerSynth),
  },
  report: {
    about: 'render a report.json (written by eval harness, discovery or demo) again as HTML + CSV',
    load: () => import('./report.js').then((m) => m.registerReport),
  },
  transform: {
    about:
      "change an image's masked region: x' = x*(1-m) + T(x)*m, written as PNG at the image's size",
    load: () => import('./transform.js').then((m) => m.registerTransform),
  },
  concepts: {
    about:
      'index which images of a data set contain which concept (masks cached on disk); prints counts',
    load: () => import('./concepts.js').then((m) => m.registerConcepts),
  },
  testset: {
    about:
      'build the test sets of one (concept, style) pair (docs/method.md section 9): train exemplars, validation and test splits, as a manifest of paths',
    load: () => import('./testset.js').then((m) => m.registerTestset),
  },
  discover: {
    about:
      'rule discovery (docs/method.md section 9): per concept and class, the accuracy drop when the concept is transformed, most reliant first',
    load: () => import('./discover.js').then((m) => m.registerDiscover),
  },
  benchmark: {
    about:
      'the evaluation harness (docs/method.md section 9): edit with each method on every test-set case and seed, score errors corrected and clean accuracy drop; resumable',
    load: () => import('./benchmark.js').then((m) => m.registerBenchmark),
  },
  serve: {
    about:
      'the local web editor: paint a concept, choose its new look, edit, see predictions change',
    load: () => import('./serve.js').then((m) => m.registerServe),
  },
  worker: {
    about:
      "run the work of 'benchmark', 'stats' and 'discover' given --queue URL (trials, statistics shards, discovery units) until stopped; reads the coordinator's files at the same paths",
    load: () => import('./worker.js').then((m) => m.registerWorker),
  },
} satisfies Record<string, CommandEntry>;

export type CommandName = keyof typeof COMMANDS;

export const ABOUT = Object.fromEntries(
  Object.entries(COMMANDS).map(([name, c]) => [name, c.about]),
) as Record<CommandName, string>;
