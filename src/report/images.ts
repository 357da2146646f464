import sharp from 'sharp';
import type { PreprocessSpec } from '../data/preprocess.js';
import { RuleditError } from '../errors.js';
import { rawPng } from '../data/png.js';

export interface ImageInfo {
  mime: string;
  width: number;
  height: number;
}

const MIME: Record<string, string> = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' };

/** Format and size of an example image, or a clear error naming the example and the image. */
export async function imageInfo(bytes: Buffer, where: string): Promise<ImageInfo> {
  let meta;
  try {
    meta = await sharp(bytes).metadata();
  } catch {
    throw new RuleditError('bad-report', `${where} is not an image (expected PNG bytes)`);
  }
  const mime = MIME[meta.format ?? ''];
  if (!mime || !meta.width || !meta.height)
    throw new RuleditError(
      'bad-report',
      `${where} is ${meta.format ?? 'an unknown format'}; report images must be PNG, JPEG or WebP`,
    );
  return { mime, width: meta.width, height: meta.height };
}

/**
 * A normalized model input (3*h*w floats in the spec's layout, as decodeImage and loadExemplar
 * return them) back to an 8-bit PNG, so producers can show exactly what the model saw.
 */
export async function inputToPng(input: Float32Array, spec: PreprocessSpec): Promise<Buffer> {
  const [h, w] = spec.size;
  const hw = h * w;
  if (input.length !== 3 * hw)
    throw new RuleditError(
      'bad-report',
      `an input of ${input.length} values is not 3x${h}x${w} (the preprocessing size)`,
    );
  const px = Buffer.alloc(3 * hw);
  for (let p = 0; p < hw; p++) {
    for (let c = 0; c < 3; c++) {
      const v = spec.layout === 'NCHW' ? input[c * hw + p] : input[p * 3 + c];
      px[p * 3 + c] = Math.round(Math.min(1, Math.max(0, v * spec.std[c] + spec.mean[c])) * 255);
    }
  }
  return rawPng(px, w, h, 3);
}

/** A mask (h*w values in [0,1]) as a greyscale PNG: white = inside the concept. */
export async function maskToPng(mask: Float32Array, size: [number, number]): Promise<Buffer> {
  const [h, w] = size;
  if (mask.length !== h * w)
    throw new RuleditError('bad-report', `a mask of ${mask.length} values is not ${h}x${w}`);
  const px = Buffer.alloc(h * w);
  for (let i = 0; i < px.length; i++) px[i] = Math.round(Math.min(1, Math.max(0, mask[i])) * 255);
  return rawPng(px, w, h, 1);
}
