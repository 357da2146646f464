import type { Command } from 'commander';
import { ABOUT } from './commands.js';
import { openDataset } from '../data/dataset.js';
import { shortLabel } from '../data/labels.js';
import { evaluate } from '../eval/evaluate.js';
import { loadClassifier } from '../classifier.js';
import {
  intOption,
  labelsOption,
  positiveIntOption,
  preprocessOption,
  threadsOption,
} from './options.js';
import { progress } from './progress.js';
import { table } from './table.js';
import { DEFAULT_BATCH } from '../runtime/session.js';
import { cacheDir } from '../io/cache.js';

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description(ABOUT.eval)
    .argument('<model>', 'ONNX model file')
    .argument(
      '<dataset>',
      'folder of class folders, folder with labels.csv, or a CSV file (file,class[,name])',
    )
    .addOption(preprocessOption())
    .addOption(labelsOption())
    .option('--batch <n>', 'images per batch', positiveIntOption, DEFAULT_BATCH)
    .addOption(threadsOption())
    .option('--classes <n>', 'rows of the per-class table to print (worst first)', intOption, 10)
    .option(
      '--cache-pixels',
      "keep each image's decoded pixels in the cache (150 kB per 224x224 image) so that later evals of this data set skip decoding",
      false,
    )
    .option(
      '--json',
      'print the full report as JSON (fields top1, top5 in percent, perClass, confusions)',
      false,
    )
    .action(evalCommand);
}

export interface EvalFlags {
  preprocess?: string;
  labels?: string;
  batch: number;
  threads: number;
  classes: number;
  cachePixels?: boolean;
  json?: boolean;
}

export async function evalCommand(
  modelPath: string,
  dataPath: string,
  opts: EvalFlags,
): Promise<void> {
  const classifier = await loadClassifier(modelPath, opts);
  const dataset = await openDataset(dataPath);
  const bar = progress('eval', dataset.items.length);
  const report = await evaluate(classifier, dataset, {
    batchSize: opts.batch,
    threads: opts.threads,
    onBatch: (n) => bar.tick(n),
    ...(opts.cachePixels ? { pixelCache: cacheDir() } : {}),
  });
  bar.done();
  if (opts.json) {
    console.log(JSON.stringify(report, null, 2));
    return;
  }
  const name = (c: number, n?: string) => (n ? `${c} ${shortLabel(n)}` : String(c));
  console.log(
    `${report.n} images: top-1 ${report.top1.toFixed(2)}%, top-5 ${report.top5.toFixed(2)}%\n`,
  );
  const worst = [...report.perClass]
    .sort((a, b) => a.top1 - b.top1 || b.n - a.n)
    .slice(0, opts.classes);
  console.log(
    `per-class top-1 (${worst.length} of ${report.perClass.length} classes, worst first):`,
  );
  console.log(
    table(
      ['class', 'images', 'top-1'],
      worst.map((c) => [name(c.class, c.name), String(c.n), `${c.top1.toFixed(1)}%`]),
    ),
  );
  if (report.confusions.length) {
    console.log('\nmost frequent confusions:');
    console.log(
      table(
        ['true class', 'predicted', 'count'],
        report.confusions.map((c) => [
          name(c.class, c.name),
          name(c.predicted, c.predictedName),
          String(c.count),
        ]),
      ),
    );
  }
}
