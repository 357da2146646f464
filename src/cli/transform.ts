import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { ABOUT } from './commands.js';
import { transformImage, type Transformation } from '../concepts/transform-image.js';
import { RuleditError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { intOption, numberOption } from './options.js';

export function registerTransform(program: Command): void {
  program
    .command('transform')
    .description(ABOUT.transform)
    .argument('<image>', 'image file (JPEG, PNG, WebP)')
    .argument('<mask>', "mask image, white (255) = region; the image's size or aspect ratio")
    .option('--texture <file>', 'paste a texture image (stretched to the image, or --tile)')
    .option('--tile', 'with --texture: repeat the texture at half the short side', false)
    .option('--jitter', 'with --texture: random offset and scale 0.75-1.5 drawn from --seed', false)
    .option('--seed <n>', 'seed of --jitter', intOption, 0)
    .option('--fill <colour>', 'fill with a colour: white, black, grey, red, green, blue, #rrggbb')
    .option('--shade <file>', "paste a texture modulated by the region's shading (model-free)")
    .option('--stylize <model>', 'neural style transfer with an ONNX model (content, style inputs)')
    .option('--style-image <file>', 'with --stylize: the style image')
    .option('--blend <w>', 'with --stylize: weight of the content', numberOption, 0.2)
    .option(
      '--range <r>',
      'with --stylize: pixel range of the model, 1 ([0,1]) or 255',
      numberOption,
      1,
    )
    .requiredOption('--out <file>', 'output PNG')
    .option('--force', 'replace --out if it exists', false)
    .action(transformCommand);
}

export interface TransformFlags {
  texture?: string;
  tile: boolean;
  jitter: boolean;
  seed: number;
  fill?: string;
  shade?: string;
  stylize?: string;
  styleImage?: string;
  blend: number;
  range: number;
  out: string;
  force: boolean;
}

export async function transformCommand(
  image: string,
  mask: string,
  opts: TransformFlags,
): Promise<void> {
  const t = transformation(opts);
  if (!opts.force && existsSync(opts.out))
    throw new RuleditError('exists', `${opts.out} already exists; pass --force to replace it`);
  const png = await transformImage(image, mask, t, opts.seed);
  await writeFileAtomic(opts.out, png, {
    force: opts.force,
    protect: [image, mask, opts.texture, opts.shade, opts.styleImage, opts.stylize],
  });
  console.log(`wrote ${opts.out}`);
}

function transformation(o: TransformFlags): Transformation {
  const given = (['texture', 'fill', 'shade', 'stylize'] as const).filter(
    (k) => o[k] !== undefined,
  );
  if (given.length !== 1)
    throw new RuleditError(
      'bad-option',
      given.length
        ? `give one transformation, not ${given.map((g) => `--${g}`).join(' and ')}`
        : 'give a transformation: --texture FILE, --fill COLOUR, --shade FILE or --stylize MODEL',
    );
  if ((o.tile || o.jitter) && !o.texture)
    throw new RuleditError('bad-option', '--tile and --jitter go with --texture');
  if (o.styleImage && !o.stylize)
    throw new RuleditError('bad-option', '--style-image goes with --stylize MODEL');
  if (o.texture)
    return {
      kind: 'texture',
      image: o.texture,
      mode: o.tile ? 'tile' : 'stretch',
      jitter: o.jitter,
    };
  if (o.fill !== undefined) return { kind: 'fill', colour: o.fill };
  if (o.shade) return { kind: 'shade', image: o.shade };
  if (!o.styleImage)
    throw new RuleditError('bad-option', '--stylize needs --style-image FILE (one style image)');
  if (o.range !== 1 && o.range !== 255)
    throw new RuleditError('bad-option', `--range must be 1 or 255, got ${o.range}`);
  return {
    kind: 'stylize',
    model: o.stylize!,
    image: o.styleImage,
    blend: o.blend,
    range: o.range,
  };
}
