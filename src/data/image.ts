import sharp, { type Metadata, type Sharp } from 'sharp';
import { RuleditError } from '../errors.js';
import { cropBox, type PreprocessSpec } from './preprocess.js';
import { readInput } from '../io/read-input.js';
import { cachedPixels } from './pixel-cache.js';

const KERNEL = {
  bilinear: 'linear',
  bicubic: 'cubic',
  nearest: 'nearest',
  lanczos3: 'lanczos3',
} as const;

/**
 * The largest image ruledit decodes (50 megapixels, e.g. 8660 x 5773): a small compressed file can
 * hold a huge image (a 776 KB PNG of 16000 x 16000 decodes to 768 MB of pixels, and its mask to
 * 1 GB of floats), so the size is checked from the header before any pixel is decoded.
 */
export const MAX_PIXELS = 50_000_000;

export function checkPixels(meta: Metadata, where: string): void {
  const { width = 0, height = 0 } = meta;
  if (width * height > MAX_PIXELS)
    throw new RuleditError(
      'image-too-large',
      `${where} is ${width}x${height} (${((width * height) / 1e6).toFixed(0)} megapixels); ruledit decodes at most ${MAX_PIXELS / 1e6} megapixels: downscale it first`,
    );
}

/** An image as 8-bit RGB (HWC), upright per EXIF, alpha flattened on white. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

export async function readRgb(source: string | Buffer): Promise<RgbImage> {
  const { bytes, where } = await load(source);
  try {
    const { data, info } = await (
      await upright(bytes, undefined, where)
    )
      .raw()
      .toBuffer({ resolveWithObject: true });
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
 * Decode, centre-crop, resize and normalize one image: 3*h*w floats in the spec's layout,
 * (pixel/255 - mean) / std.
 */
export async function decodeImage(
  source: string | Buffer,
  spec: PreprocessSpec,
  /** A cache folder: a file's pixels are kept there and read back (pixel-cache.ts). */
  options: { pixelCache?: string } = {},
): Promise<Float32Array> {
  const [h, w] = spec.size;
  const decode = async (bytes: Buffer, where: string) =>
    (await modelPixels(bytes, where, spec)).pixels;
  if (typeof source === 'string' && options.pixelCache) {
    const pixels = await cachedPixels(source, spec, options.pixelCache, (b) => decode(b, source));
    return normalize(pixels, h, w, spec);
  }
  const { bytes, where } = await load(source);
  return normalize(await decode(bytes, where), h, w, spec);
}

/**
 * The image as the model sees it before normalization: 8-bit RGB (HWC) at spec.size, and the
 * size of the whole upright image the crop was taken from (masks are cropped the same way).
 */
export async function modelPixels(
  bytes: Buffer,
  where: string,
  spec: PreprocessSpec,
): Promise<{ pixels: Buffer; width: number; height: number }> {
  const [h, w] = spec.size;
  try {
    const meta = await sharp(bytes).metadata();
    // autoOrient is the size after EXIF rotation (orientations 5-8 swap width and height).
    const { width, height } = meta.autoOrient;
    const pixels = await upright(bytes, meta, where)
      .extract(cropBox(width, height, spec))
      // The pre-resize extract already rules out JPEG shrink-on-load in sharp 0.35; saying so
      // keeps the pixels independent of the file format should the pipeline ever be reordered.
      .resize(w, h, { kernel: KERNEL[spec.resize], fit: 'fill', fastShrinkOnLoad: false })
      .raw()
      .toBuffer();
    return { pixels, width, height };
  } catch (e) {
    throw badImage(where, e);
  }
}

/**
 * An sRGB, 3-channel, upright view of the image. Each step is added only when the image needs it:
 * on a plain RGB JPEG they would cost a third of the decode time for nothing.
 */
function upright(bytes: Buffer, meta: Metadata, where: string): Sharp;
function upright(bytes: Buffer, meta: undefined, where: string): Promise<Sharp>;
function upright(bytes: Buffer, meta: Metadata | undefined, where: string): Sharp | Promise<Sharp> {
  if (!meta)
    return sharp(bytes)
      .metadata()
      .then((m) => upright(bytes, m, where));
  checkPixels(meta, where);
  // failOn 'error': a truncated JPEG is an error, not a silently grey bottom half.
  let img = sharp(bytes, { failOn: 'error' });
  if ((meta.orientation ?? 1) > 1) img = img.rotate();
  if (meta.hasAlpha) img = img.flatten({ background: '#ffffff' });
  if (meta.space !== 'srgb' || meta.channels !== 3) img = img.toColourspace('srgb');
  // rotate() was called first, so extract() after this crops the upright image.
  return img;
}

function normalize(pixels: Buffer, h: number, w: number, spec: PreprocessSpec): Float32Array {
  const hw = h * w;
  if (pixels.length !== hw * 3)
    throw new Error(`decoded ${pixels.length} bytes, expected ${hw * 3} (RGB)`);
  // One table per channel: 256 possible inputs, so normalizing is a lookup. Entries are computed
  // exactly as normalizePixels does, so both give bit-identical results on 8-bit pixels.
  const lut = new Float32Array(768);
  for (let c = 0; c < 3; c++)
    for (let v = 0; v < 256; v++) lut[c * 256 + v] = (v / 255 - spec.mean[c]) / spec.std[c];
  // Plain loops, not toLayout's callback: a call per value cost as much as the JPEG decode
  // (1.5-2.3 ms of 4.5 per ImageNet photo, on the thread that feeds ONNX Runtime).
  const out = new Float32Array(3 * hw);
  if (spec.layout === 'NCHW') {
    for (let c = 0; c < 3; c++) {
      const plane = out.subarray(c * hw, (c + 1) * hw);
      for (let p = 0, i = c; p < hw; p++, i += 3) plane[p] = lut[c * 256 + pixels[i]];
    }
  } else {
    for (let i = 0; i < 3 * hw; i += 3)
      for (let c = 0; c < 3; c++) out[i + c] = lut[c * 256 + pixels[i + c]];
  }
  return out;
}

/** (v/255 - mean) / std of RGB (HWC) pixels that may be fractional (blended images). */
export function normalizePixels(pixels: ArrayLike<number>, spec: PreprocessSpec): Float32Array {
  const hw = spec.size[0] * spec.size[1];
  return toLayout(hw, spec, (p, c) => (pixels[p * 3 + c] / 255 - spec.mean[c]) / spec.std[c]);
}

function toLayout(
  hw: number,
  spec: PreprocessSpec,
  value: (p: number, c: number) => number,
): Float32Array {
  const out = new Float32Array(3 * hw);
  if (spec.layout === 'NCHW') {
    for (let c = 0; c < 3; c++) for (let p = 0; p < hw; p++) out[c * hw + p] = value(p, c);
  } else {
    for (let p = 0; p < hw; p++) for (let c = 0; c < 3; c++) out[p * 3 + c] = value(p, c);
  }
  return out;
}

async function load(source: string | Buffer): Promise<{ bytes: Buffer; where: string }> {
  if (typeof source !== 'string') return { bytes: source, where: 'image' };
  return { bytes: await readInput(source, 'image'), where: source };
}

function badImage(where: string, e: unknown): RuleditError {
  if (e instanceof RuleditError) return e;
  const why = (e as Error).message.split('\n')[0];
  return new RuleditError(
    'bad-image',
    `cannot decode ${where}: ${why} (corrupt, truncated or not an image?)`,
  );
}
