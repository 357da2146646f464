import sharp from 'sharp';
import { readRgb } from '../data/image.js';
import { loadMask } from '../data/mask.js';
import { RuleditError } from '../errors.js';
import { rng } from '../util/random.js';
import { sharedStylizer } from './stylize.js';
import { compose, fillTexture, parseColour, shadeTexture, textureImage } from './transform.js';

/** One way to change a concept's region (docs/method.md section 9). */
export type Transformation =
  | {
      kind: 'texture';
      image: string;
      mode?: 'tile' | 'stretch';
      /** Random offset and scale (0.75-1.5) of the texture, drawn from the seed. */
      jitter?: boolean;
    }
  | { kind: 'fill'; colour: string }
  /** Model-free texture transfer that keeps the region's shading (luminance-modulated texture). */
  | { kind: 'shade'; image: string }
  /** Neural style transfer; blend = weight of the content (default 0.2). */
  | {
      kind: 'stylize';
      model: string;
      image: string;
      blend?: number;
      /** Pixel range the model takes and gives: [0, 1] (default) or 0..255. */
      range?: 1 | 255;
    };

/**
 * x' = x * (1 - m) + T(x) * m at the image's own size (upright, alpha flattened), as PNG. The mask
 * must have the image's size or its aspect ratio (it is then scaled); an all-black mask is an
 * error. Pixels where the mask is 0 are returned exactly as decoded.
 */
export async function transformImage(
  image: string | Buffer,
  mask: string | Buffer,
  t: Transformation,
  seed = 0,
): Promise<Buffer> {
  const rgb = await readRgb(image);
  const { width: w, height: h } = rgb;
  const m = await loadMask(mask, w, h, { size: [h, w], cropFraction: 1 });
  const x = Float32Array.from(rgb.data);
  const out = compose(x, await replacement(x, m, w, h, t, seed, rgb), m);
  // Clamped, not wrapped: a stray 255.6 must stay white, never turn black.
  const bytes = new Uint8ClampedArray(out.length);
  for (let i = 0; i < out.length; i++) bytes[i] = Math.round(out[i]);
  return sharp(bytes, { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toBuffer();
}

/** T(x): what goes into the mask. */
async function replacement(
  x: Float32Array,
  m: Float32Array,
  w: number,
  h: number,
  t: Transformation,
  seed: number,
  rgb: Awaited<ReturnType<typeof readRgb>>,
): Promise<Float32Array> {
  switch (t.kind) {
    case 'fill':
      return fillTexture(parseColour(t.colour), w, h);
    case 'texture': {
      const u = rng(seed);
      const place = t.jitter
        ? { scale: 0.75 + 0.75 * u(), offset: [u(), u()] as [number, number] }
        : {};
      return textureImage(t.image, w, h, t.mode ?? 'stretch', place);
    }
    case 'shade':
      return shadeTexture(x, await textureImage(t.image, w, h, 'stretch'), m);
    case 'stylize': {
      const blend = t.blend ?? 0.2;
      if (!(blend >= 0 && blend <= 1))
        throw new RuleditError('bad-option', `blend must be in [0, 1], got ${blend}`);
      const stylizer = await sharedStylizer(t.model, t.range ? { range: t.range } : {});
      const styled = await stylizer.run(rgb, await readRgb(t.image));
      const out = new Float32Array(x.length);
      for (let i = 0; i < x.length; i++) out[i] = blend * x[i] + (1 - blend) * styled[i];
      return out;
    }
    default:
      throw new RuleditError(
        'bad-transformation',
        `unknown transformation ${JSON.stringify((t as { kind: unknown }).kind)}: use texture, fill, shade or stylize`,
      );
  }
}
