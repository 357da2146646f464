import sharp from 'sharp';
import { readRgb } from '../data/image.js';
import { RuleditError } from '../errors.js';
import { readInput } from '../io/read-input.js';

/**
 * Concept transformations at model resolution (docs/method.md section 9). Images here are RGB, HWC,
 * floats 0..255, w x h; masks are h*w floats in [0,1]. x' = x * (1 - m) + T(x) * m.
 */
export type Rgb = [number, number, number];

/** CSS values for the names (so 'green' is #008000 and 'grey' is #808080). */
const NAMED: Record<string, Rgb> = {
  white: [255, 255, 255],
  black: [0, 0, 0],
  grey: [128, 128, 128],
  gray: [128, 128, 128],
  red: [255, 0, 0],
  green: [0, 128, 0],
  blue: [0, 0, 255],
};

/** A `--fill` colour: white, black, grey/gray, red, green, blue, #rrggbb or #rgb. */
export function parseColour(text: string): Rgb {
  const t = text.trim().toLowerCase();
  if (t in NAMED) return [...NAMED[t]] as Rgb;
  let m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/.exec(t);
  if (m) return [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)];
  m = /^#([0-9a-f])([0-9a-f])([0-9a-f])$/.exec(t);
  if (m) return [m[1], m[2], m[3]].map((d) => parseInt(d + d, 16)) as Rgb;
  throw new RuleditError(
    'bad-colour',
    `unknown colour ${JSON.stringify(text)}: use one of ${Object.keys(NAMED).join(', ')}, ` +
      `or a hex code such as #ffffff or #fff`,
  );
}

/** A w x h image of one colour. */
export function fillTexture(colour: Rgb, w: number, h: number): Float32Array {
  const out = new Float32Array(w * h * 3);
  for (let p = 0; p < w * h; p++) {
    out[p * 3] = colour[0];
    out[p * 3 + 1] = colour[1];
    out[p * 3 + 2] = colour[2];
  }
  return out;
}

/** Where a texture sits: its size times `scale`, shifted by `offset` (fractions of its size). */
export interface TexturePlacement {
  scale?: number;
  offset?: [number, number];
  /** Mirror the texture left to right. */
  flip?: boolean;
}

/**
 * A texture image as a w x h RGB image. 'stretch': the whole texture resized to w x h.
 * 'tile': the texture scaled (aspect kept) so its short side is min(w, h) / 2, repeated from the
 * top-left corner. A placement scales that texture and shifts it, repeating it where it no longer
 * covers the image (so a stretched texture shrunk to 0.75 tiles).
 */
export async function textureImage(
  source: string | Buffer,
  w: number,
  h: number,
  mode: 'stretch' | 'tile' = 'stretch',
  place: TexturePlacement = {},
): Promise<Float32Array> {
  let bytes: Buffer;
  if (typeof source === 'string') {
    bytes = await readInput(source, 'texture image');
  } else bytes = source;
  const tex = await readRgb(bytes).catch((e: unknown) => {
    const where = typeof source === 'string' ? source : 'texture';
    throw new RuleditError('bad-image', `cannot decode texture ${where}: ${(e as Error).message}`);
  });
  const raw = { raw: { width: tex.width, height: tex.height, channels: 3 as const } };
  let tw = w;
  let th = h;
  if (mode === 'tile') {
    const scale = Math.min(w, h) / 2 / Math.min(tex.width, tex.height);
    tw = Math.max(1, Math.round(tex.width * scale));
    th = Math.max(1, Math.round(tex.height * scale));
  } else if (mode !== 'stretch') {
    throw new RuleditError(
      'bad-texture-mode',
      `texture mode must be 'stretch' or 'tile', got ${String(mode)}`,
    );
  }
  const scale = place.scale ?? 1;
  if (!(scale > 0)) throw new Error(`textureImage: scale must be > 0, got ${scale}`);
  tw = Math.max(1, Math.round(tw * scale));
  th = Math.max(1, Math.round(th * scale));
  // Offsets wrap around (any number works, -0.25 = 0.75).
  const wrap = (v = 0) => v - Math.floor(v);
  const ox = Math.floor(wrap(place.offset?.[0]) * tw) % tw;
  const oy = Math.floor(wrap(place.offset?.[1]) * th) % th;
  const px = await sharp(Buffer.from(tex.data.buffer, tex.data.byteOffset, tex.data.length), raw)
    .resize(tw, th, { fit: 'fill' })
    .raw()
    .toBuffer();
  const out = new Float32Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const tx = (x + ox) % tw;
      const s = (((y + oy) % th) * tw + (place.flip ? tw - 1 - tx : tx)) * 3;
      const d = (y * w + x) * 3;
      out[d] = px[s];
      out[d + 1] = px[s + 1];
      out[d + 2] = px[s + 2];
    }
  return out;
}

/** x' = x * (1 - m) + t * m, per pixel (x, t: HWC RGB; m: one value per pixel). */
export function compose(x: Float32Array, t: Float32Array, m: Float32Array): Float32Array {
  if (x.length !== t.length || x.length !== m.length * 3)
    throw new Error(
      `compose: sizes differ (image ${x.length}, transformed ${t.length}, mask ${m.length} x 3)`,
    );
  const out = new Float32Array(x.length);
  for (let p = 0; p < m.length; p++) {
    const a = m[p];
    for (let c = 0; c < 3; c++) {
      const i = p * 3 + c;
      out[i] = a === 0 ? x[i] : a === 1 ? t[i] : x[i] * (1 - a) + t[i] * a;
    }
  }
  return out;
}

/**
 * Model-free texture transfer that keeps the region's shading: each pixel of the texture is scaled
 * by the image's luminance there relative to the region's mean luminance (mask-weighted), so
 * shadows and highlights of the original surface show through the new material.
 */
export function shadeTexture(x: Float32Array, t: Float32Array, m: Float32Array): Float32Array {
  if (x.length !== t.length || x.length !== m.length * 3) {
    throw new Error(
      `shadeTexture: sizes differ (image ${x.length}, texture ${t.length}, mask ${m.length} x 3)`,
    );
  }
  const luminance = (p: number) => 0.299 * x[p * 3] + 0.587 * x[p * 3 + 1] + 0.114 * x[p * 3 + 2];
  let sum = 0;
  let weight = 0;
  for (let p = 0; p < m.length; p++) [sum, weight] = [sum + m[p] * luminance(p), weight + m[p]];
  const mean = weight > 0 ? sum / weight : 0;
  const out = new Float32Array(t.length);
  for (let p = 0; p < m.length; p++) {
    // A black region has no shading to keep: the texture goes in as it is.
    const gain = mean > 0 ? luminance(p) / mean : 1;
    for (let c = 0; c < 3; c++) out[p * 3 + c] = Math.min(255, t[p * 3 + c] * gain);
  }
  return out;
}
