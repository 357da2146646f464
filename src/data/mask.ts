import sharp, { type Metadata } from 'sharp';
import { RuleditError } from '../errors.js';
import { checkPixels } from './image.js';
import { cropBox, type PreprocessSpec } from './preprocess.js';
import { readInput } from '../io/read-input.js';

/**
 * Exact area averaging of a w x h (row-major) map to outW x outH: each output cell is the mean of
 * the input pixels it covers, a pixel cut by the cell's border counting with the covered fraction.
 * The mean of the output equals the mean of the input (up to float rounding).
 */
export function areaResize(
  mask: Float32Array,
  w: number,
  h: number,
  outW: number,
  outH: number,
): Float32Array {
  if (mask.length !== w * h)
    throw new Error(`areaResize: got ${mask.length} values, expected ${w}x${h} = ${w * h}`);
  if (!(outW > 0 && outH > 0 && Number.isInteger(outW) && Number.isInteger(outH)))
    throw new Error(`areaResize: output size must be positive integers, got ${outW}x${outH}`);
  const cols = coverage(w, outW);
  const rows = coverage(h, outH);
  // Rows first (w -> outW for every input row), then columns (h -> outH): a box filter is separable.
  const mid = new Float64Array(h * outW);
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let ox = 0; ox < outW; ox++) {
      const { start, weights } = cols[ox];
      let s = 0;
      for (let k = 0; k < weights.length; k++) s += weights[k] * mask[row + start + k];
      mid[y * outW + ox] = s;
    }
  }
  const out = new Float32Array(outW * outH);
  for (let oy = 0; oy < outH; oy++) {
    const { start, weights } = rows[oy];
    for (let ox = 0; ox < outW; ox++) {
      let s = 0;
      for (let k = 0; k < weights.length; k++) s += weights[k] * mid[(start + k) * outW + ox];
      out[oy * outW + ox] = s;
    }
  }
  return out;
}

/** For each of n output cells over an axis of `size` pixels: first pixel index and weights (sum 1). */
function coverage(size: number, n: number): { start: number; weights: Float64Array }[] {
  const step = size / n;
  const cells: { start: number; weights: Float64Array }[] = [];
  for (let i = 0; i < n; i++) {
    const a = i * step;
    const b = i === n - 1 ? size : (i + 1) * step;
    const start = Math.floor(a);
    const end = Math.min(size, Math.ceil(b));
    const weights = new Float64Array(end - start);
    for (let p = start; p < end; p++) {
      const covered = Math.min(b, p + 1) - Math.max(a, p);
      weights[p - start] = covered > 0 ? covered / (b - a) : 0;
    }
    cells.push({ start, weights });
  }
  return cells;
}

/**
 * A concept mask aligned with `decodeImage`'s output for an imageWidth x imageHeight (upright)
 * image: h*w values in [0,1] (spec.size), grey/255 of the mask file (alpha flattened on black, so
 * transparent = out), centre-cropped like the image and area-averaged to the model's resolution.
 * The mask must have the image's size or the same aspect ratio (then it is scaled, nearest).
 */
export async function loadMask(
  source: string | Buffer,
  imageWidth: number,
  imageHeight: number,
  spec: Pick<PreprocessSpec, 'size' | 'cropFraction'>,
): Promise<Float32Array> {
  const where = typeof source === 'string' ? source : 'mask';
  const bytes = typeof source === 'string' ? await readInput(source, 'mask') : source;
  const full = await readMaskAt(bytes, where, imageWidth, imageHeight);
  const box = cropBox(imageWidth, imageHeight, spec);
  const crop = new Float32Array(box.width * box.height);
  let inside = 0;
  for (let y = 0; y < box.height; y++) {
    const src = (box.top + y) * imageWidth + box.left;
    for (let x = 0; x < box.width; x++) {
      const v = full[src + x];
      crop[y * box.width + x] = v;
      inside += v;
    }
  }
  // A mask is a picture of the concept, 255 on 0; one whose brightest pixel is faint (1/255 from a
  // bad export, a JPEG's noise) marks nothing a user meant.
  let peak = 0;
  for (let i = 0; i < full.length; i++) peak = Math.max(peak, full[i]);
  if (peak > 0 && peak < 0.5)
    throw new RuleditError(
      'bad-mask',
      `${where}: its brightest pixel is ${Math.round(peak * 255)}/255; a mask marks the concept white (255) on black (0)`,
    );
  if (inside === 0) {
    throw new RuleditError(
      'bad-mask',
      peak === 0
        ? `${where} is empty (all black): paint the concept white (255) on black (0)`
        : `${where} has no pixel inside the model's centre crop (${box.width}x${box.height} at ` +
            `${box.left},${box.top} of ${imageWidth}x${imageHeight}): the concept lies only in ` +
            `the border the model never sees; choose a concept near the image centre or set ` +
            `crop_fraction to 1 in the preprocessing spec`,
    );
  }
  const [h, w] = spec.size;
  return areaResize(crop, box.width, box.height, w, h);
}

/** The mask as grey/255, upright, at the image's size (row-major, imageWidth x imageHeight). */
async function readMaskAt(
  bytes: Buffer,
  where: string,
  imageWidth: number,
  imageHeight: number,
): Promise<Float32Array> {
  let meta: Metadata;
  try {
    meta = await sharp(bytes).metadata();
  } catch (e) {
    throw badMask(where, e);
  }
  checkPixels(meta, where);
  const mw = meta.autoOrient?.width ?? meta.width;
  const mh = meta.autoOrient?.height ?? meta.height;
  if (!mw || !mh) throw badMask(where, new Error('no image size'));
  if (mw !== imageWidth || mh !== imageHeight) {
    // Same aspect ratio up to the rounding of one side.
    const sameRatio =
      Math.abs((mw * imageHeight) / imageWidth - mh) <= 1 ||
      Math.abs((mh * imageWidth) / imageHeight - mw) <= 1;
    if (!sameRatio)
      throw new RuleditError(
        'bad-mask',
        `${where} is ${mw}x${mh} but the image is ${imageWidth}x${imageHeight}: a mask must have ` +
          `the image's size or at least its aspect ratio (after EXIF rotation)`,
      );
  }
  let data: Buffer;
  let channels: number;
  try {
    let img = sharp(bytes, { failOn: 'error' });
    if ((meta.orientation ?? 1) > 1) img = img.rotate();
    if (meta.hasAlpha) img = img.flatten({ background: '#000000' });
    img = img.grayscale();
    if (mw !== imageWidth || mh !== imageHeight)
      img = img.resize(imageWidth, imageHeight, { kernel: 'nearest', fit: 'fill' });
    const r = await img.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    data = r.data;
    channels = r.info.channels;
    if (r.info.width !== imageWidth || r.info.height !== imageHeight)
      throw new Error(`decoded ${r.info.width}x${r.info.height}`);
  } catch (e) {
    throw badMask(where, e);
  }
  const out = new Float32Array(imageWidth * imageHeight);
  for (let p = 0; p < out.length; p++) out[p] = data[p * channels] / 255;
  return out;
}

function badMask(where: string, e: unknown): RuleditError {
  const why = (e as Error).message.split('\n')[0];
  return new RuleditError(
    'bad-mask',
    `cannot decode ${where}: ${why} (the mask must be a PNG or JPEG image, white = concept)`,
  );
}
