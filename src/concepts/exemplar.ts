import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { loadMask } from '../data/mask.ts';
import { modelPixels, normalizePixels } from '../data/image.ts';
import type { PreprocessSpec } from '../data/preprocess.ts';
import { RuleditError } from '../errors.ts';
import { compose, fillTexture, parseColour, shadeTexture, textureImage } from './transform.ts';

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

export type Replacement =
  | { texture: string; mode?: 'stretch' | 'tile'; keepShading?: boolean }
  | { fill: string }
  | { modified: string };

export async function loadExemplar(
  image: string,
  mask: string,
  replacement: Replacement,
  spec: PreprocessSpec,
): Promise<Exemplar> {
  const [h, w] = spec.size;
  const imageBytes = await readBytes(image, 'image');
  const maskBytes = await readBytes(mask, 'mask');
  const img = await modelPixels(imageBytes, image, spec);
  const m = await loadMaskFrom(maskBytes, mask, img.width, img.height, spec);
  const x = Float32Array.from(img.pixels);
  let transformed: Float32Array;
  let replacementHash: string;
  if ('fill' in replacement) {
    transformed = compose(x, fillTexture(parseColour(replacement.fill), w, h), m);
    replacementHash = sha256(Buffer.from(replacement.fill, 'utf8'));
  } else if ('texture' in replacement) {
    const bytes = await readBytes(replacement.texture, 'texture image');
    const texture = await textureImage(bytes, w, h, replacement.mode ?? 'stretch');
    const t = replacement.keepShading ? shadeTexture(x, texture, m) : texture;
    transformed = compose(x, t, m);
    replacementHash = sha256(bytes);
  } else if ('modified' in replacement) {
    const bytes = await readBytes(replacement.modified, 'modified image');
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
      'a replacement must give one of texture, fill or modified',
    );
  }
  return {
    original: normalizePixels(x, spec),
    transformed: normalizePixels(transformed, spec),
    mask: m,
    size: [h, w],
    hashes: { image: sha256(imageBytes), mask: sha256(maskBytes), replacement: replacementHash },
  };
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

async function readBytes(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch {
    throw new RuleditError('not-found', `${what} not found: ${path}`);
  }
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}
