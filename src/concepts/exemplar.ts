import { loadMask } from '../data/mask.js';
import { modelPixels, normalizePixels } from '../data/image.js';
import type { PreprocessSpec } from '../data/preprocess.js';
import { RuleditError } from '../errors.js';
import { sha256 } from '../io/digest.js';
import { rng } from '../util/random.js';
import { loadStyle, type Style } from './style.js';
import {
  compose,
  fillTexture,
  parseColour,
  shadeTexture,
  textureImage,
  type TexturePlacement,
} from './transform.js';
import { readInput } from '../io/read-input.js';

/** One exemplar for the rewrite: x and x' as normalized model inputs, and the concept mask. */
export interface Exemplar {
  /** x: normalized model input (3*h*w, the spec's layout), identical to decodeImage(image, spec). */
  original: Float32Array;
  /** x': x with the masked region transformed, normalized the same way. */
  transformed: Float32Array;
  /** h*w in [0,1] at model resolution (area fraction of each pixel inside the concept). */
  mask: Float32Array;
  /** [height, width] of the model input. */
  size: [number, number];
  /** sha256 hex of the image file, the mask file, and the texture/modified file or fill string. */
  hashes: { image: string; mask: string; replacement: string };
}

/** How textures are laid over the concept, and how many placements of each to make. */
interface TextureLook {
  mode?: 'stretch' | 'tile';
  keepShading?: boolean;
  /**
   * Placements per texture image (default DEFAULT_VARIANTS): the first as given, the others
   * jittered (scale 0.75-1.5, a random offset, every other one mirrored), drawn from `seed`.
   */
  variants?: number;
  seed?: number;
}

/**
 * The concept's new look. A style (a folder of style images, see loadStyle) gives one exemplar
 * per image and placement: every variant feeds the direction and the objective, so what is
 * particular to one texture averages out and what is common to the style stays.
 */
export type Replacement =
  | ({ texture: string } & TextureLook)
  | ({ style: string | Style } & TextureLook)
  | { fill: string }
  | { modified: string };

/**
 * Placements per texture or style image. Chosen on the built-in scene world's validation scenes
 * (bench/defaults.ts: 4 placements with the preserve term scored 76.1 against 72.1-75.0 for the
 * other three combinations), not on any test set.
 */
export const DEFAULT_VARIANTS = 4;

/** One exemplar for a replacement that gives one (a texture, a fill or a modified copy). */
export async function loadExemplar(
  image: string,
  mask: string,
  replacement: Replacement,
  spec: PreprocessSpec,
): Promise<Exemplar> {
  // One exemplar: a texture is placed once unless more variants are asked for.
  const one = 'texture' in replacement ? { variants: 1, ...replacement } : replacement;
  const all = await loadExemplars(image, mask, one, spec);
  if (all.length !== 1)
    throw new RuleditError(
      'bad-exemplar',
      `this replacement gives ${all.length} exemplars (a style or several variants): use loadExemplars`,
    );
  return all[0];
}

/** Every exemplar of one image and mask: one per style image and placement (one for a fill or a modified copy). */
export async function loadExemplars(
  image: string,
  mask: string,
  replacement: Replacement,
  spec: PreprocessSpec,
): Promise<Exemplar[]> {
  const [h, w] = spec.size;
  const imageBytes = await readInput(image, 'image');
  const maskBytes = await readInput(mask, 'mask');
  const img = await modelPixels(imageBytes, image, spec);
  const m = await loadMaskFrom(maskBytes, mask, img.width, img.height, spec);
  const x = Float32Array.from(img.pixels);
  const original = normalizePixels(x, spec);
  const hashes = { image: sha256(imageBytes), mask: sha256(maskBytes) };
  const exemplar = (transformed: Float32Array, replacementHash: string): Exemplar => ({
    original,
    transformed: normalizePixels(transformed, spec),
    mask: m,
    size: [h, w],
    hashes: { ...hashes, replacement: replacementHash },
  });
  if ('texture' in replacement || 'style' in replacement) {
    const files =
      'texture' in replacement
        ? [replacement.texture]
        : typeof replacement.style === 'string'
          ? (await loadStyle(replacement.style)).images
          : replacement.style.images;
    const placements = jitteredPlacements(
      replacement.variants ?? DEFAULT_VARIANTS,
      replacement.seed ?? 0,
    );
    const out: Exemplar[] = [];
    for (const file of files) {
      const bytes = await readInput(file, 'texture image');
      for (const place of placements) {
        const texture = await textureImage(bytes, w, h, replacement.mode ?? 'stretch', place);
        const t = replacement.keepShading ? shadeTexture(x, texture, m) : texture;
        const where = placements.length > 1 ? `\0${JSON.stringify(place)}` : '';
        out.push(exemplar(compose(x, t, m), sha256(Buffer.concat([bytes, Buffer.from(where)]))));
      }
    }
    return out;
  }
  let transformed: Float32Array;
  let replacementHash: string;
  if ('fill' in replacement) {
    transformed = compose(x, fillTexture(parseColour(replacement.fill), w, h), m);
    replacementHash = sha256(Buffer.from(replacement.fill, 'utf8'));
  } else if ('modified' in replacement) {
    const bytes = await readInput(replacement.modified, 'modified image');
    const mod = await modelPixels(bytes, replacement.modified, spec);
    if (mod.width !== img.width || mod.height !== img.height)
      throw new RuleditError(
        'bad-exemplar',
        `the modified image ${replacement.modified} is ${mod.width}x${mod.height} but ` +
          `${image} is ${img.width}x${img.height}: the modified copy must have the same size`,
      );
    transformed = Float32Array.from(mod.pixels);
    replacementHash = sha256(bytes);
  } else {
    throw new RuleditError(
      'bad-exemplar',
      'a replacement must give one of texture, style, fill or modified',
    );
  }
  return [exemplar(transformed, replacementHash)];
}

/** Placement 0 as given; the others jittered, deterministic from the seed. */
export function jitteredPlacements(variants: number, seed: number): TexturePlacement[] {
  if (!(Number.isInteger(variants) && variants >= 1 && variants <= 64))
    throw new RuleditError(
      'bad-option',
      `variants must be a whole number in 1..64, got ${variants}`,
    );
  const u = rng(seed);
  return Array.from({ length: variants }, (_, k) =>
    k === 0
      ? {}
      : { scale: 0.75 + 0.75 * u(), offset: [u(), u()] as [number, number], flip: k % 2 === 1 },
  );
}

async function loadMaskFrom(
  bytes: Buffer,
  where: string,
  width: number,
  height: number,
  spec: PreprocessSpec,
): Promise<Float32Array> {
  try {
    return await loadMask(bytes, width, height, spec);
  } catch (e) {
    // loadMask got bytes, so its messages say 'mask': name the file instead.
    if (e instanceof RuleditError)
      throw new RuleditError(e.code, e.message.replace(/^(cannot decode )?mask\b/, `$1${where}`));
    throw e;
  }
}
