import { resolve } from 'node:path';
import type { Command } from 'commander';
import { ABOUT } from './commands.js';
import { Option } from 'commander';
import {
  buildConceptIndex,
  loadConceptIndex,
  type ConceptIndex,
} from '../concepts/concept-index.js';
import { loadStyle } from '../concepts/style.js';
import { parseStyleTransform } from '../concepts/transformed.js';
import { shortLabel } from '../data/labels.js';
import { RuleditError } from '../errors.js';
import { maskSource } from './concepts.js';
import { discoverRules, discoveryCells } from '../eval/discover.js';
import { checkReportDir, writeReport } from '../report/write.js';
import { loadClassifier } from '../classifier.js';
import {
  intOption,
  labelsOption,
  numberOption,
  positiveIntOption,
  preprocessOption,
  threadsOption,
  cacheOption,
  checkRefresh,
  refreshOption,
  queueOption,
  repeatedOption,
} from './options.js';
import { progress } from './progress.js';
import { queueDiscovery } from '../queue/discovery.js';
import { table } from './table.js';
import { DEFAULT_BATCH } from '../runtime/session.js';

export function registerDiscover(program: Command): void {
  program
    .command('discover')
    .description(ABOUT.discover)
    .argument('<model>', 'ONNX classifier')
    .argument('<dataset>', 'labelled data set the concept index covers')
    .option('--index <file>', "concept index JSON (from 'ruledit concepts')")
    .option('--masks <dir>', 'or build the index from mask files DIR/<concept>/<image stem>.png')
    .option('--coco <file>', 'or from COCO instance annotations')
    .option(
      '--segment <model>',
      "semantic segmentation ONNX model (labels.txt, preprocess.json beside it); repeat it to merge several models' concepts",
      repeatedOption,
    )
    .option('--threshold <p>', 'with --segment: minimum class probability', numberOption, 0.5)
    .option('--min-area <f>', 'with --segment: minimum fraction of the image', numberOption, 0.01)
    .requiredOption('--concepts <names>', 'comma-separated concepts, e.g. person,car,dog')
    .requiredOption('--styles <dirs>', 'comma-separated style folders (each several style images)')
    .option(
      '--min-images <n>',
      'leave out classes with fewer images containing the concept',
      positiveIntOption,
      3,
    )
    .addOption(
      new Option('--transform <kind>', 'how a style image replaces the concept')
        .choices(['texture', 'tile', 'shade', 'stylize'])
        .default('texture'),
    )
    .option('--stylize-model <model>', 'with --transform stylize: the ONNX style transfer model')
    .option('--top <n>', 'rows of the ranked table to print (0 = all)', intOption, 20)
    .addOption(preprocessOption())
    .addOption(labelsOption())
    .option('--batch <n>', 'images per batch', positiveIntOption, DEFAULT_BATCH)
    .addOption(threadsOption())
    .addOption(cacheOption())
    .addOption(refreshOption('the concept index and the transformed images'))
    .addOption(queueOption())
    .option('--report <dir>', 'also write an HTML/JSON/CSV report with the heat map into DIR')
    .option('--force', 'replace the files of a report already in --report', false)
    .option('--json', 'print every row as JSON', false)
    .action(discoverCommand);
}

export interface DiscoverFlags {
  index?: string;
  masks?: string;
  coco?: string;
  segment?: string[];
  threshold: number;
  minArea: number;
  concepts: string;
  styles: string;
  minImages: number;
  transform: string;
  stylizeModel?: string;
  top: number;
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

const list = (s: string) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

export async function discoverCommand(
  modelPath: string,
  dataset: string,
  opts: DiscoverFlags,
): Promise<void> {
  checkRefresh(opts);
  if (opts.report) checkReportDir(opts.report, { force: opts.force });
  const start = performance.now();
  const { model, spec, labels } = await loadClassifier(modelPath, opts);
  const index = await indexFor(dataset, opts);
  const styles = await Promise.all(list(opts.styles).map((d) => loadStyle(d)));
  const bars: Record<string, ReturnType<typeof progress>> = {};
  const shown: Record<string, number> = {};
  const result = await discoverRules(model, index, {
    spec,
    concepts: list(opts.concepts),
    styles,
    transformation: parseStyleTransform(opts.transform, opts.stylizeModel),
    minImages: opts.minImages,
    classNames: labels?.map(shortLabel),
    batchSize: opts.batch,
    threads: opts.threads,
    cacheDir: opts.cache,
    refresh: opts.refresh,
    onWarning: (w) => process.stderr.write(`warning: ${w}\n`),
    executor: opts.queue
      ? await queueDiscovery(opts.queue, { say: (m) => process.stderr.write(`${m}\n`) })
      : undefined,
    onProgress: (stage, done, total) => {
      bars[stage] ??= progress(stage, total);
      bars[stage].tick(done - (shown[stage] ?? 0));
      shown[stage] = done;
      if (done === total) bars[stage].done();
    },
  });
  const seconds = (performance.now() - start) / 1000;
  if (opts.report) {
    const written = await writeReport(
      {
        title: `Rule discovery: ${list(opts.concepts).join(', ')} x ${styles.map((s) => s.name).join(', ')}`,
        summary: [
          `Model ${modelPath}; ${result.rows.length} (concept, class) pairs with at least ${opts.minImages} images; ` +
            `each image transformed with ${styles.reduce((a, s) => a + s.images.length, 0)} style images (${opts.transform}).`,
          'Drop = accuracy on the images as they are minus the mean accuracy over styles once the concept is transformed.',
        ],
        discovery: discoveryCells(result.rows),
      },
      opts.report,
      { force: opts.force },
    );
    process.stderr.write(`wrote ${written.html}\n`);
  }
  if (opts.json) {
    console.log(JSON.stringify({ ...result, seconds }, null, 2));
    return;
  }
  const rows = opts.top ? result.rows.slice(0, opts.top) : result.rows;
  console.log(
    `${result.rows.length} (concept, class) pairs, ${result.variants} transformed images, ${seconds.toFixed(0)} s` +
      (result.skipped.length
        ? `; ${result.skipped.length} pairs with fewer than ${opts.minImages} images left out`
        : '') +
      '\n',
  );
  const pct = (x: number) => x.toFixed(1);
  console.log(
    table(
      ['concept', 'class', 'images', 'before', 'after', 'drop', ...styles.map((s) => s.name)],
      rows.map((r) => [
        r.concept,
        labels?.[r.class] ? `${r.class} ${shortLabel(labels[r.class])}` : String(r.class),
        String(r.images),
        pct(r.before),
        pct(r.after),
        pct(r.drop),
        ...styles.map((s) => pct(r.perStyle[s.name])),
      ]),
    ),
  );
  if (rows.length < result.rows.length)
    console.log(`(${result.rows.length - rows.length} more rows: --top 0 or --json shows all)`);
}

async function indexFor(dataset: string, opts: DiscoverFlags): Promise<ConceptIndex> {
  const given = (['index', 'masks', 'coco', 'segment'] as const).filter(
    (k) => opts[k] !== undefined,
  );
  if (given.length !== 1)
    throw new RuleditError(
      'bad-option',
      given.length
        ? `give one concept source, not ${given.map((g) => `--${g}`).join(' and ')}`
        : 'give the concepts: --index FILE, or --masks DIR, --coco FILE or --segment MODEL',
    );
  if (opts.index) {
    const index = await loadConceptIndex(opts.index);
    if (resolve(index.dataset) !== resolve(dataset))
      throw new RuleditError(
        'bad-index',
        `${opts.index} indexes ${index.dataset}, not ${dataset}: give the data set it was built for`,
      );
    return index;
  }
  const source = maskSource(opts);
  // Every concept of the source, so the cache is shared with 'ruledit concepts' (the cost is the same).
  let bar: ReturnType<typeof progress> | undefined;
  let shown = 0;
  const index = await buildConceptIndex(dataset, source, {
    cacheDir: opts.cache,
    refresh: opts.refresh,
    onWarning: (w) => process.stderr.write(`warning: ${w}\n`),
    threads: opts.threads,
    onProgress: (done, total) => {
      bar ??= progress('concepts', total);
      bar.tick(done - shown);
      shown = done;
    },
  });
  bar?.done();
  return index;
}
