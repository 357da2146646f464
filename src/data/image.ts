import { stat } from 'node:fs/promises';
import sharp, { type Sharp } from 'sharp';
import { RuleditError } from '../errors.ts';
import { cropBox, type PreprocessSpec } from './preprocess.ts';

const KERNEL = {
  bilinear: 'linear',
  bicubic: 'cubic',
  nearest: 'nearest',
  lanczos3: 'lanczos3',
} as const;

/** An image as 8-bit RGB, rows top to bottom, after EXIF orientation; alpha flattened on white. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

export async function readRgb(source: string | Buffer): Promise<RgbImage> {
  const where = typeof source === 'string' ? source : 'image';
  await mustExist(source);
  try {
    const { data, info } = await open(source).raw().toBuffer({ resolveWithObject: true });
    return {
      data: new Uint8Array(data.buffer, data.byteOffset, data.length),
      width: info.width,
      height: info.height,
    };
  } catch (e) {
    throw badImage(where, e);
  }
}

/**
 * Decode, centre-crop, resize and normalize one image into a Float32Array of 3*h*w values in the
 * spec's layout ((pixel/255 - mean) / std).
 */
export async function decodeImage(
  source: string | Buffer,
  spec: PreprocessSpec,
): Promise<Float32Array> {
  const where = typeof source === 'string' ? source : 'image';
  await mustExist(source);
  const [h, w] = spec.size;
  let pixels: Buffer;
  try {
    // The header gives the size; autoOrient is it after EXIF rotation (5-8 swap width and height).
    const { width, height } = (await sharp(source).metadata()).autoOrient;
    const box = cropBox(width, height, spec);
    // rotate() comes before extract() in open(), so the crop is taken on the upright image.
    pixels = await open(source)
      .extract(box)
      .resize(w, h, { kernel: KERNEL[spec.resize], fit: 'fill' })
      .raw()
      .toBuffer();
  } catch (e) {
    throw badImage(where, e);
  }
  return normalize(pixels, h, w, spec);
}

function open(source: string | Buffer): Sharp {
  // failOn 'error': a truncated JPEG is an error, not a silently grey bottom half.
  return sharp(source, { failOn: 'error' })
    .rotate()
    .flatten({ background: '#ffffff' })
    .toColourspace('srgb')
    .removeAlpha();
}

function normalize(pixels: Buffer, h: number, w: number, spec: PreprocessSpec): Float32Array {
  const out = new Float32Array(3 * h * w);
  const scale = spec.std.map((s) => 1 / (255 * s));
  const shift = spec.mean.map((m, c) => m / spec.std[c]);
  const hw = h * w;
  for (let p = 0; p < hw; p++) {
    for (let c = 0; c < 3; c++) {
      const v = pixels[p * 3 + c] * scale[c] - shift[c];
      out[spec.layout === 'NCHW' ? c * hw + p : p * 3 + c] = v;
    }
  }
  return out;
}

async function mustExist(source: string | Buffer): Promise<void> {
  if (typeof source !== 'string') return;
  try {
    await stat(source);
  } catch {
    throw new RuleditError('not-found', `image not found: ${source}`);
  }
}

function badImage(where: string, e: unknown): RuleditError {
  return new RuleditError(
    'bad-image',
    `cannot decode ${where}: ${(e as Error).message.split('\n')[0]} (corrupt, truncated or not an image?)`,
  );
}
