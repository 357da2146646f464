import { RuleditError } from '../errors.js';
import { readInput } from '../io/read-input.js';

/**
 * COCO instance annotations (the `instances_*.json` format): polygons and run-length encodings
 * decoded exactly as pycocotools' maskApi.c does, so masks agree pixel for pixel with the masks
 * the rest of the world computes from the same file.
 *
 * Masks here are h*w bytes, row-major, 1 = inside. (COCO's own RLE runs down columns.)
 */
export interface CocoImage {
  id: number;
  file_name: string;
  width: number;
  height: number;
}

export interface CocoCategory {
  id: number;
  name: string;
}

/** Polygons ([x0,y0,x1,y1,...] each), or an RLE with counts as numbers or as COCO's string. */
export type CocoSegmentation = number[][] | { counts: number[] | string; size: [number, number] };

export interface CocoAnnotation {
  id?: number;
  image_id: number;
  category_id: number;
  segmentation: CocoSegmentation;
  iscrowd?: number;
}

export interface Coco {
  path: string;
  images: Map<number, CocoImage>;
  categories: CocoCategory[];
  annotations: CocoAnnotation[];
}

export async function loadCoco(path: string): Promise<Coco> {
  const text = (await readInput(path, 'COCO annotation file')).toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new RuleditError('bad-coco', `${path} is not valid JSON: ${(e as Error).message}`);
  }
  return parseCoco(json, path);
}

export function parseCoco(json: unknown, where: string): Coco {
  const fail = (msg: string): never => {
    throw new RuleditError('bad-coco', `${where}: ${msg} (expected COCO instances JSON)`);
  };
  const o = json as Record<string, unknown>;
  if (typeof o !== 'object' || o === null) fail('not a JSON object');
  for (const key of ['images', 'annotations', 'categories'])
    if (!Array.isArray(o[key])) fail(`no '${key}' list`);
  const images = new Map<number, CocoImage>();
  for (const im of o.images as CocoImage[]) {
    if (typeof im?.id !== 'number' || typeof im.file_name !== 'string')
      fail(`an image entry lacks 'id' or 'file_name': ${JSON.stringify(im).slice(0, 120)}`);
    images.set(im.id, im);
  }
  const categories = (o.categories as CocoCategory[]).map((c) => {
    if (typeof c?.id !== 'number' || typeof c.name !== 'string')
      fail(`a category lacks 'id' or 'name': ${JSON.stringify(c).slice(0, 120)}`);
    return { id: c.id, name: c.name };
  });
  const annotations = o.annotations as CocoAnnotation[];
  for (const a of annotations) {
    if (typeof a?.image_id !== 'number' || typeof a.category_id !== 'number' || !a.segmentation)
      fail(
        `an annotation lacks image_id, category_id or segmentation: ${JSON.stringify(a).slice(0, 120)}`,
      );
  }
  return { path: where, images, categories, annotations };
}

/** Category ids by name; an unknown name is an error that lists the known ones. */
export function categoryIds(coco: Coco, names: string[]): Map<string, number> {
  const byName = new Map(coco.categories.map((c) => [c.name, c.id]));
  const unknown = names.filter((n) => !byName.has(n));
  if (unknown.length)
    throw new RuleditError(
      'unknown-concept',
      `unknown COCO categor${unknown.length > 1 ? 'ies' : 'y'} ${unknown.map((n) => `'${n}'`).join(', ')} ` +
        `in ${coco.path}; known: ${coco.categories.map((c) => c.name).join(', ')}`,
    );
  return new Map(names.map((n) => [n, byName.get(n)!]));
}

/** The union of one annotation's parts as an h x w mask (1 = inside). */
export function segmentationMask(seg: CocoSegmentation, h: number, w: number): Uint8Array {
  if (Array.isArray(seg)) {
    const out = new Uint8Array(h * w);
    // pycocotools merges an object's polygons with a union (annToRLE -> merge).
    for (const poly of seg) {
      const m = decodeRle(polygonRle(poly, h, w), h, w);
      for (let i = 0; i < out.length; i++) out[i] |= m[i];
    }
    return out;
  }
  const [rh, rw] = seg.size ?? [];
  if (rh !== h || rw !== w)
    throw new RuleditError(
      'bad-coco',
      `an RLE of size ${rh}x${rw} belongs to an image of ${h}x${w} (height x width)`,
    );
  const counts = typeof seg.counts === 'string' ? rleFromString(seg.counts) : seg.counts;
  return decodeRle(counts, h, w);
}

/**
 * Run lengths (column-major, first run = outside) to an h x w row-major mask. Runs must add up
 * to h*w exactly: anything else means the RLE belongs to another image size.
 */
export function decodeRle(counts: ArrayLike<number>, h: number, w: number): Uint8Array {
  const out = new Uint8Array(h * w);
  let p = 0;
  let value = 0;
  for (let i = 0; i < counts.length; i++, value ^= 1) {
    const n = counts[i];
    if (!Number.isInteger(n) || n < 0 || p + n > h * w)
      throw new RuleditError(
        'bad-coco',
        `RLE run ${i} (${n}) is negative or runs past the ${h}x${w} image`,
      );
    if (value)
      for (let k = p; k < p + n; k++) {
        const x = Math.floor(k / h);
        out[(k - x * h) * w + x] = 1;
      }
    p += n;
  }
  if (p !== h * w)
    throw new RuleditError('bad-coco', `RLE covers ${p} pixels, the ${h}x${w} image has ${h * w}`);
  return out;
}

/**
 * COCO's compressed RLE string (maskApi.c rleFrString): LEB128-like, 6 bits a character offset by
 * 48, and - from the fourth count on - each count stored as the difference to the one two before.
 */
export function rleFromString(s: string): number[] {
  const counts: number[] = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      if (p >= s.length) throw new RuleditError('bad-coco', `truncated RLE string '${s}'`);
      const c = s.charCodeAt(p) - 48;
      if (c < 0 || c > 63) throw new RuleditError('bad-coco', `invalid character in RLE '${s}'`);
      x += (c & 0x1f) * 2 ** (5 * k);
      more = (c & 0x20) !== 0;
      p++;
      k++;
      // Sign extension: the last group's 0x10 bit marks a negative difference.
      if (!more && c & 0x10) x -= 2 ** (5 * k);
    }
    // `> 2`, not `>= 2`: the quirk is in the format (pycocotools encodes the same way).
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}

/** The inverse of rleFromString (maskApi.c rleToString). */
export function rleToString(counts: ArrayLike<number>): string {
  let s = '';
  for (let i = 0; i < counts.length; i++) {
    let x = counts[i];
    if (i > 2) x -= counts[i - 2];
    let more = true;
    while (more) {
      let c = x & 0x1f;
      x = Math.floor(x / 32);
      more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      s += String.fromCharCode(c + 48);
    }
  }
  return s;
}

/**
 * A polygon [x0,y0,x1,y1,...] to RLE counts, a port of maskApi.c rleFrPoly: the outline is traced
 * on a 5x finer grid, its crossings of the pixel-centre columns become run boundaries. The result
 * is the even-odd fill of the polygon sampled at pixel centres (x + 0.5, y + 0.5).
 */
export function polygonRle(xy: ArrayLike<number>, h: number, w: number): number[] {
  const scale = 5;
  const k = Math.floor(xy.length / 2);
  if (k < 3) return [h * w]; // pycocotools' rule too: fewer than 3 points enclose nothing
  const x = new Int32Array(k + 1);
  const y = new Int32Array(k + 1);
  // C's (int) cast truncates toward zero; Math.trunc keeps negative coordinates identical.
  for (let j = 0; j < k; j++) x[j] = Math.trunc(scale * xy[j * 2] + 0.5);
  for (let j = 0; j < k; j++) y[j] = Math.trunc(scale * xy[j * 2 + 1] + 0.5);
  x[k] = x[0];
  y[k] = y[0];
  const u: number[] = [];
  const v: number[] = [];
  for (let j = 0; j < k; j++) {
    let [xs, xe, ys, ye] = [x[j], x[j + 1], y[j], y[j + 1]];
    const dx = Math.abs(xe - xs);
    const dy = Math.abs(ys - ye);
    const flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) [xs, xe, ys, ye] = [xe, xs, ye, ys];
    const s = dx >= dy ? (ye - ys) / dx : (xe - xs) / dy;
    if (dx >= dy)
      for (let d = 0; d <= dx; d++) {
        const t = flip ? dx - d : d;
        u.push(t + xs);
        v.push(Math.trunc(ys + s * t + 0.5));
      }
    else
      for (let d = 0; d <= dy; d++) {
        const t = flip ? dy - d : d;
        v.push(t + ys);
        u.push(Math.trunc(xs + s * t + 0.5));
      }
  }
  // Points where the outline crosses a column of pixel centres, downsampled to pixels.
  const a: number[] = [];
  for (let j = 1; j < u.length; j++) {
    if (u[j] === u[j - 1]) continue;
    let xd = u[j] < u[j - 1] ? u[j] : u[j] - 1;
    xd = (xd + 0.5) / scale - 0.5;
    if (Math.floor(xd) !== xd || xd < 0 || xd > w - 1) continue;
    let yd = v[j] < v[j - 1] ? v[j] : v[j - 1];
    yd = (yd + 0.5) / scale - 0.5;
    yd = Math.ceil(yd < 0 ? 0 : yd > h ? h : yd);
    a.push(xd * h + yd);
  }
  a.push(h * w);
  // Unsigned 32-bit comparison as qsort in C; positions are non-negative here anyway.
  a.sort((p, q) => p - q);
  let prev = 0;
  for (let j = 0; j < a.length; j++) {
    const t = a[j];
    a[j] -= prev;
    prev = t;
  }
  // Two crossings at one position cancel: a zero run merges its neighbours.
  const b: number[] = [a[0]];
  let j = 1;
  while (j < a.length) {
    if (a[j] > 0) b.push(a[j++]);
    else {
      j++;
      if (j < a.length) b[b.length - 1] += a[j++];
    }
  }
  return b;
}
