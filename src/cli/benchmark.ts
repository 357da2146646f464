import type { Command } from 'commander';
import { ABOUT } from './commands.js';
import { loadTestSet } from '../concepts/testset.js';
import { openDataset, type DatasetItem } from '../data/dataset.js';
import { RuleditError } from '../errors.js';
import { readInput } from '../io/read-input.js';
import { runHarness } from '../eval/harness.js';
import { METHOD_NAMES, METHODS, type MethodName } from '../edit/methods.js';
import { methodGrid, parseGridFile, type MethodGrid } from '../eval/grid.js';
import { GRID_NAMES, isGridName, namedGrid } from '../eval/named-grids.js';
import { aggregate, MEASURE_KEYS, type MethodSummary } from '../eval/results.js';
import { checkReportDir, writeReport } from '../report/write.js';
import { loadClassifier, type Classifier } from '../classifier.js';
import {
  labelsOption,
  numberOption,
  positiveIntOption,
  preprocessOption,
  threadsOption,
  cacheOption,
  checkRefresh,
  refreshOption,
  queueOption,
} from './options.js';
import { queueExecutor } from '../queue/coordinator.js';
import { table } from './table.js';
import { DEFAULT_BATCH } from '../runtime/session.js';

export function registerBenchmark(program: Command): void {
  program
    .command('benchmark')
    .description(ABOUT.benchmark)
    .argument('<model>', 'ONNX classifier')
    .requiredOption('--testsets <files...>', "test set manifests (from 'ruledit testset')")
    .option(
      '--methods <list>',
      `comma-separated (default ${METHOD_NAMES.join(',')}; with a built-in --grid, all of its methods)`,
    )
    .option(
      '--seeds <n>',
      'splits per case (seed k re-draws the split with seed + k)',
      positiveIntOption,
      1,
    )
    .requiredOption('--results <file>', 'results .jsonl (appended; finished jobs are skipped)')
    .option(
      '--stats-data <dataset>',
      "reference images: the rewrite's key statistics and preserve term, retrain-last's anchors; every 4th is held out for the guard",
    )
    .option('--clean <dataset>', "clean test set (default: the data set of the manifests' index)")
    .option('--clean-limit <n>', 'use an evenly spaced subset of n clean images', positiveIntOption)
    .option(
      '--grid <name|file>',
      `a built-in grid (${GRID_NAMES.join(', ')}: the paper's study, docs/method.md section 9) or a JSON file: {"finetune-local": [{"lr": 1e-4}, {"lr": 1e-3}], ...}`,
    )
    .option('--layer <name>', 'block every method edits, unless the grid names one (default auto)')
    .option(
      '--max-drop <points>',
      'reject settings dropping clean accuracy by more',
      numberOption,
      0.25,
    )
    .addOption(preprocessOption())
    .addOption(labelsOption())
    .option('--batch <n>', 'images per batch', positiveIntOption, DEFAULT_BATCH)
    .addOption(threadsOption())
    .addOption(cacheOption())
    .addOption(refreshOption('the key statistics and the transformed images'))
    .addOption(queueOption())
    .option('--report <dir>', 'also write an HTML/JSON/CSV report into DIR')
    .option('--force', 'replace the files of a report already in --report', false)
    .option('--json', 'print the per-method summary as JSON', false)
    .action(benchmarkCommand);
}

export interface BenchmarkFlags {
  testsets: string[];
  methods?: string;
  seeds: number;
  results: string;
  statsData?: string;
  clean?: string;
  cleanLimit?: number;
  grid?: string;
  layer?: string;
  maxDrop: number;
  preprocess?: string;
  labels?: string;
  batch: number;
  threads: number;
  cache?: string;
  refresh: boolean;
  queue?: string;
  report?: string;
  force: boolean;
  json: boolean;
}

export async function benchmarkCommand(modelPath: string, opts: BenchmarkFlags): Promise<void> {
  checkRefresh(opts);
  if (opts.report) checkReportDir(opts.report, { force: opts.force });
  const start = performance.now();
  const classifier = await loadClassifier(modelPath, opts);
  const testsets = await Promise.all(opts.testsets.map((t) => loadTestSet(t)));
  // --layer goes to the methods that edit a chosen block (not retrain-last's last layer).
  const methods = (await methodsOf(classifier, opts)).map((m) =>
    opts.layer && 'layer' in METHODS[m.kind].options
      ? { ...m, grid: m.grid.map((s) => ({ layer: opts.layer!, ...s })) }
      : m,
  );
  const needy = [...new Set(methods.filter((m) => METHODS[m.kind].guarded).map((m) => m.name))];
  if (needy.length && !opts.statsData)
    throw new RuleditError(
      'no-stats',
      `${needy.join(' and ')} ${needy.length > 1 ? 'need' : 'needs'} reference images (the rewrite's key statistics, the guard's held-out images): pass --stats-data DATASET`,
    );
  const clean = await cleanSet(
    testsets.map((t) => t.dataset),
    opts,
  );
  const statsData = opts.statsData ? (await openDataset(opts.statsData)).items : undefined;
  const run = await runHarness(classifier, {
    testsets,
    methods,
    seeds: opts.seeds,
    clean,
    results: opts.results,
    statsData,
    maxDrop: opts.maxDrop,
    batchSize: opts.batch,
    threads: opts.threads,
    cacheDir: opts.cache,
    refresh: opts.refresh,
    executor: opts.queue ? await queueExecutor(opts.queue) : undefined,
    onProgress: (m) => process.stderr.write(`${m}\n`),
  });
  const summary = aggregate(run.lines);
  const seconds = (performance.now() - start) / 1000;
  if (opts.report) {
    const written = await writeReport(
      {
        title: `Benchmark: ${methods.map((m) => m.name).join(' vs ')}`,
        summary: [
          `Model ${modelPath}; ${testsets.length} test set(s), ${run.lines.length / methods.length} (case, seed) jobs; ` +
            `settings chosen on the validation split, rejecting clean accuracy drops above ${opts.maxDrop} points.`,
          `Clean accuracy drop measured on ${clean.length} images.`,
        ],
        methods: aggregate(run.lines, 'case'),
        tables: [summaryTable(summary)],
      },
      opts.report,
      { force: opts.force, protect: [opts.results] },
    );
    process.stderr.write(`wrote ${written.html}\n`);
  }
  if (opts.json) {
    console.log(
      JSON.stringify({ ran: run.ran, skipped: run.skipped, seconds, methods: summary }, null, 2),
    );
    return;
  }
  console.log(
    `${run.ran} jobs run, ${run.skipped} found finished in ${opts.results} (${seconds.toFixed(0)} s)\n`,
  );
  const t = summaryTable(summary);
  console.log(
    table(
      t.columns,
      t.rows.map((r) => r.map((c) => (c === null ? 'n/a' : String(c)))),
    ),
  );
}

function summaryTable(summary: MethodSummary[]) {
  const num = (x: number | null) => (x === null || Number.isNaN(x) ? null : Number(x.toFixed(1)));
  return {
    title: 'Errors corrected (%) per method: mean over cases and seeds (cases with a number)',
    columns: ['method', ...MEASURE_KEYS, 'clean drop', 'jobs', 'rejected'],
    rows: summary.map((s) => [
      s.method,
      ...MEASURE_KEYS.map((k) => (num(s[k]) === null ? null : `${num(s[k])} (${s.counts[k]})`)),
      s.cleanDrop === null || Number.isNaN(s.cleanDrop) ? null : Number(s.cleanDrop.toFixed(2)),
      s.lines,
      s.rejected,
    ]),
  };
}

/** --methods over --grid: a built-in grid's entries by name, or each method with a grid file's settings. */
async function methodsOf(classifier: Classifier, opts: BenchmarkFlags): Promise<MethodGrid[]> {
  const names = opts.methods
    ?.split(',')
    .map((m) => m.trim())
    .filter(Boolean);
  if (opts.grid && isGridName(opts.grid)) {
    const all = await namedGrid(opts.grid, classifier);
    const unknown = names?.filter((n) => !all.some((m) => m.name === n));
    if (unknown?.length)
      throw new RuleditError(
        'bad-option',
        `--grid ${opts.grid} has no method '${unknown[0]}' (it has ${all.map((m) => m.name).join(', ')})`,
      );
    return names ? all.filter((m) => names.includes(m.name)) : all;
  }
  const grids = opts.grid ? parseGridFile(await readJson(opts.grid), opts.grid) : {};
  return (names ?? METHOD_NAMES).map((kind) => methodGrid(kind, grids[kind as MethodName]));
}

async function cleanSet(datasets: string[], opts: BenchmarkFlags): Promise<DatasetItem[]> {
  const distinct = [...new Set(datasets)];
  if (!opts.clean && distinct.length > 1)
    throw new RuleditError(
      'bad-option',
      `the test sets come from ${distinct.length} data sets; name the clean test set with --clean DATASET`,
    );
  const items = (await openDataset(opts.clean ?? distinct[0])).items;
  if (!opts.cleanLimit || opts.cleanLimit >= items.length) return items;
  // Evenly spaced, so a sorted data set keeps its spread of classes.
  const step = items.length / opts.cleanLimit;
  return Array.from({ length: opts.cleanLimit }, (_, i) => items[Math.floor(i * step)]);
}

async function readJson(path: string): Promise<unknown> {
  const text = (await readInput(path, 'grid file')).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new RuleditError('bad-grid', `${path} is not valid JSON: ${(e as Error).message}`);
  }
}
