import type { Command } from 'commander';
import { ABOUT } from './commands.js';
import { buildConceptIndex, conceptCounts, type MaskSource } from '../concepts/concept-index.js';
import { describeSkips } from '../concepts/skips.js';
import { RuleditError } from '../errors.js';
import {
  numberOption,
  threadsOption,
  cacheOption,
  refreshOption,
  repeatedOption,
} from './options.js';
import { progress } from './progress.js';
import { table } from './table.js';

export function registerConcepts(program: Command): void {
  program
    .command('concepts')
    .description(ABOUT.concepts)
    .argument('<dataset>', 'folder of images, class folders, labels.csv, or a CSV/TXT list')
    .option('--masks <dir>', 'mask files: DIR/<concept>/<image file stem>.png, 255 = concept')
    .option('--coco <file>', 'COCO instances JSON (polygons and RLE), categories as concepts')
    .option(
      '--segment <model>',
      "semantic segmentation ONNX model (labels.txt, preprocess.json beside it); repeat it to merge several models' concepts",
      repeatedOption,
    )
    .option('--threshold <p>', 'with --segment: minimum class probability', numberOption, 0.5)
    .option('--min-area <f>', 'with --segment: minimum fraction of the image', numberOption, 0.01)
    .option('--concepts <names>', 'comma-separated concepts to index (default: all)')
    .addOption(cacheOption())
    .addOption(refreshOption('the concept index'))
    .addOption(threadsOption())
    .option('--json', 'print the counts, index path and skips as JSON', false)
    .action(conceptsCommand);
}

export interface ConceptsFlags {
  masks?: string;
  coco?: string;
  segment?: string[];
  threshold: number;
  minArea: number;
  concepts?: string;
  cache?: string;
  refresh: boolean;
  threads: number;
  json: boolean;
}

export async function conceptsCommand(dataset: string, opts: ConceptsFlags): Promise<void> {
  const given = (['masks', 'coco', 'segment'] as const).filter((k) => opts[k] !== undefined);
  if (given.length !== 1)
    throw new RuleditError(
      'bad-option',
      given.length
        ? `give one mask source, not ${given.map((g) => `--${g}`).join(' and ')}`
        : 'give a mask source: --masks DIR, --coco FILE or --segment MODEL',
    );
  const source = maskSource(opts);
  const concepts = opts.concepts
    ?.split(',')
    .map((c) => c.trim())
    .filter(Boolean);
  const options = { cacheDir: opts.cache, refresh: opts.refresh, concepts, threads: opts.threads };
  let file = '';
  let bar: ReturnType<typeof progress> | undefined;
  let shown = 0;
  const index = await buildConceptIndex(dataset, source, {
    ...options,
    onIndexFile: (path) => (file = path),
    onProgress: (done, total) => {
      bar ??= progress('concepts', total);
      bar.tick(done - shown);
      shown = done;
    },
  });
  bar?.done();
  const counts = conceptCounts(index);
  const skipped = index.skipped ?? [];
  if (opts.json) {
    console.log(
      JSON.stringify(
        { index: file, source: index.source, images: index.images.length, counts, skipped },
        null,
        2,
      ),
    );
    return;
  }
  console.log(`${index.images.length} images contain at least one concept (${index.source})\n`);
  console.log(
    table(
      ['concept', 'images'],
      counts.map((c) => [c.concept, String(c.images)]),
    ),
  );
  for (const line of describeSkips(skipped)) console.log(line);
  console.log(`\nindex: ${file}`);
}

/** The mask source the flags name (exactly one of --masks, --coco, --segment was checked given). */
export function maskSource(opts: {
  masks?: string;
  coco?: string;
  segment?: string[];
  threshold?: number;
  minArea?: number;
}): MaskSource {
  if (opts.masks) return { kind: 'masks', dir: opts.masks };
  if (opts.coco) return { kind: 'coco', file: opts.coco };
  return {
    kind: 'segmentation',
    model: opts.segment!,
    threshold: opts.threshold,
    minArea: opts.minArea,
  };
}
