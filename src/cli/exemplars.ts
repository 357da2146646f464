import type { Command } from 'commander';
import {
  DEFAULT_VARIANTS,
  loadExemplars as loadVariants,
  type Exemplar,
  type Replacement,
} from '../concepts/exemplar.js';
import type { PreprocessSpec } from '../data/preprocess.js';
import { RuleditError } from '../errors.js';
import { positiveIntOption, preprocessOption, repeatedOption, threadsOption } from './options.js';
import { checkOutput } from '../io/atomic.js';

export interface ExemplarFlags {
  image: string[];
  mask: string[];
  texture?: string;
  style?: string;
  variants: number;
  tile: boolean;
  keepShading: boolean;
  fill?: string;
  modified?: string[];
  out: string;
  layer?: string;
  preprocess?: string;
  threads: number;
  force: boolean;
  json: boolean;
}

/**
 * A command over one model and exemplars (edit, finetune, retrain, match): the options they all take;
 * `--out` (the edited model) unless the command writes no model.
 */
export function exemplarCommand(
  program: Command,
  name: string,
  description: string,
  writesModel = true,
): Command {
  const command = program
    .command(name)
    .description(description)
    .argument('<model>', 'ONNX model file')
    .requiredOption(
      '--image <file>',
      'exemplar image (repeat for several exemplars)',
      repeatedOption,
    )
    .requiredOption(
      '--mask <file>',
      'mask of the concept in the image, 255 = concept (one per --image)',
      repeatedOption,
    )
    .option('--texture <file>', 'replace the masked region by this texture')
    .option(
      '--style <dir>',
      'replace the masked region by every image of this style folder (one exemplar each)',
    )
    .option(
      '--variants <n>',
      'with --texture or --style: placements per image (the first as given, the others jittered in scale, offset and mirroring)',
      positiveIntOption,
      DEFAULT_VARIANTS,
    )
    .option('--tile', 'tile the texture instead of stretching it over the image', false)
    .option(
      '--keep-shading',
      "scale the texture by the region's own shading (model-free texture transfer)",
      false,
    )
    .option('--fill <colour>', 'replace the masked region by a colour (name or #rrggbb)')
    .option(
      '--modified <file>',
      'a transformed copy of the image made by you (one per --image)',
      repeatedOption,
    )
    .addOption(preprocessOption())
    .addOption(threadsOption())
    .option('--json', 'print the report as JSON', false);
  return writesModel
    ? command
        .requiredOption('--out <file>', 'where to write the edited model')
        .option('--force', 'replace --out if it exists', false)
    : command;
}

/** The files an edit reads: none of them may become its output, even with --force. */
export const exemplarInputs = (opts: ExemplarFlags): (string | undefined)[] => [
  ...opts.image,
  ...opts.mask,
  opts.texture,
  ...(opts.modified ?? []),
];

/** Refuse a bad --out before any work (the same checks as the write itself). */
export function checkEditOutput(modelPath: string, opts: ExemplarFlags): void {
  checkOutput(opts.out, { force: opts.force, protect: [modelPath, ...exemplarInputs(opts)] });
}

export async function loadExemplars(
  opts: ExemplarFlags,
  spec: PreprocessSpec,
): Promise<Exemplar[]> {
  const replacement = replacementsOf(opts);
  if (opts.mask.length !== opts.image.length) {
    throw new RuleditError(
      'bad-exemplar',
      `${opts.image.length} --image but ${opts.mask.length} --mask: give one mask per image`,
    );
  }
  const each = await Promise.all(
    opts.image.map((image, i) => loadVariants(image, opts.mask[i], replacement(i), spec)),
  );
  return each.flat();
}

function replacementsOf(opts: ExemplarFlags): (i: number) => Replacement {
  const given = [opts.texture, opts.style, opts.fill, opts.modified].filter(
    (x) => x !== undefined,
  ).length;
  if (given !== 1)
    throw new RuleditError(
      'bad-exemplar',
      'give exactly one of --texture, --style, --fill or --modified',
    );
  const look = {
    mode: opts.tile ? ('tile' as const) : ('stretch' as const),
    keepShading: opts.keepShading,
    variants: opts.variants,
  };
  if (opts.texture) return () => ({ texture: opts.texture!, ...look });
  if (opts.style) return () => ({ style: opts.style!, ...look });
  if (opts.variants !== DEFAULT_VARIANTS)
    throw new RuleditError('bad-option', '--variants goes with --texture or --style');
  if (opts.fill) return () => ({ fill: opts.fill! });
  if (opts.modified!.length !== opts.image.length) {
    throw new RuleditError(
      'bad-exemplar',
      `${opts.image.length} --image but ${opts.modified!.length} --modified: give one per image`,
    );
  }
  return (i) => ({ modified: opts.modified![i] });
}
