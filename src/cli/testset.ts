import type { Command } from 'commander';
import { ABOUT } from './commands.js';
import { Option } from 'commander';
import { loadConceptIndex } from '../concepts/concept-index.js';
import { loadStyle } from '../concepts/style.js';
import { buildTestSet, saveTestSet } from '../concepts/testset.js';
import { parseStyleTransform } from '../concepts/transformed.js';
import { openDataset } from '../data/dataset.js';
import { loadLabels, shortLabel } from '../data/labels.js';
import { RuleditError } from '../errors.js';
import { intOption, numberOption, positiveIntOption } from './options.js';
import { table } from './table.js';

export function registerTestset(program: Command): void {
  program
    .command('testset')
    .description(ABOUT.testset)
    .argument('<index>', "concept index JSON (written by 'ruledit concepts')")
    .requiredOption('--concept <name>', 'concept whose look changes')
    .requiredOption('--style <dir>', 'style: a folder of at least 2 style images')
    .option('--n-train <n>', 'train exemplars per case (the paper: 3 or 10)', positiveIntOption, 3)
    .option(
      '--target <class>',
      'target class index (default: every class with enough images)',
      intOption,
    )
    .option('--seed <n>', 'seed of the splits', intOption, 0)
    .option(
      '--validation <f>',
      'fraction of each test set for hyperparameter selection',
      numberOption,
      0.3,
    )
    .option(
      '--heldout <k>',
      'held-out style images per case (default: all but the same one)',
      positiveIntOption,
    )
    .addOption(
      new Option('--transform <kind>', 'how a style image replaces the concept')
        .choices(['texture', 'tile', 'shade', 'stylize'])
        .default('texture'),
    )
    .option('--stylize-model <model>', 'with --transform stylize: the ONNX style transfer model')
    .option('--labels <file>', "class names, one per line (default: the data set's own names)")
    .requiredOption('--out <file>', 'manifest JSON to write')
    .option('--force', 'replace --out if it exists', false)
    .option('--json', 'print the manifest summary as JSON', false)
    .action(testsetCommand);
}

export interface TestsetFlags {
  concept: string;
  style: string;
  nTrain: number;
  target?: number;
  seed: number;
  validation: number;
  heldout?: number;
  transform: string;
  stylizeModel?: string;
  labels?: string;
  out: string;
  force: boolean;
  json: boolean;
}

export async function testsetCommand(indexPath: string, opts: TestsetFlags): Promise<void> {
  const index = await loadConceptIndex(indexPath);
  const style = await loadStyle(opts.style);
  const classNames = await classNamesFor(index.dataset, opts.labels);
  const manifest = buildTestSet(index, {
    concept: opts.concept,
    style,
    nTrain: opts.nTrain,
    target: opts.target,
    seed: opts.seed,
    validation: opts.validation,
    heldout: opts.heldout,
    transformation: parseStyleTransform(opts.transform, opts.stylizeModel),
    indexPath,
    classNames,
  });
  if (opts.out === indexPath)
    throw new RuleditError(
      'same-as-input',
      'refusing to overwrite the concept index; choose another --out',
    );
  await saveTestSet(manifest, opts.out, { force: opts.force });
  const heldout = manifest.cases[0].heldoutStyles.length;
  const summary = manifest.cases.map((c) => ({
    case: c.id,
    target: c.target,
    name: c.targetName,
    train: c.train.length,
    validation: c.validation.length,
    test: c.test.length,
  }));
  if (opts.json) {
    console.log(
      JSON.stringify(
        { manifest: opts.out, images: manifest.images.length, heldout, cases: summary },
        null,
        2,
      ),
    );
    return;
  }
  console.log(
    `${manifest.images.length} images contain '${manifest.concept}'; style '${style.name}': ` +
      `1 style image for the exemplars, ${heldout} held out; ${manifest.cases.length} case(s)\n`,
  );
  console.log(
    table(
      ['target', 'train', 'validation', 'test'],
      summary.map((s) => [
        s.name ? `${s.target} ${shortLabel(s.name)}` : String(s.target),
        String(s.train),
        String(s.validation),
        String(s.test),
      ]),
    ),
  );
  console.log(
    `\nvalidation and test images are each scored with the same style image and ${heldout} held-out one(s)`,
  );
  console.log(`wrote ${opts.out}`);
}

/** --labels, else the names the data set gives its classes (labels.csv or folder names). */
export async function classNamesFor(
  dataset: string,
  labels?: string,
): Promise<string[] | undefined> {
  if (labels) return loadLabels(labels);
  const d = await openDataset(dataset).catch(() => undefined);
  if (!d?.classNames) return undefined;
  const names: string[] = [];
  for (const [c, n] of d.classNames) names[c] = n;
  return names;
}
