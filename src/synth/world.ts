import { wordPixels } from './font.js';
import { GROUNDS, paintGround, paintSky, type Ground } from './grounds.js';
import { PAINTERS, hsv, type PartIds } from './objects.js';
import { Raster, type Rgb } from './raster.js';
import { rng } from '../util/random.js';

/**
 * The scene world: one object per image on a background, with a pixel mask for every concept.
 * Its rules are planted: vehicles stand on road, boats on water, airplanes fly in sky, cows,
 * trees and houses stand on grass, umbrellas on sand (each with a few exceptions), and the word
 * COW on a sticker marks many cows (the typographic cue).
 */
export const CLASSES = [
  'car',
  'truck',
  'bus',
  'motorcycle',
  'boat',
  'airplane',
  'cow',
  'tree',
  'house',
  'umbrella',
] as const;
export type ClassName = (typeof CLASSES)[number];
export const VEHICLES: ClassName[] = ['car', 'truck', 'bus', 'motorcycle'];

/**
 * Disjoint seed ranges, so no test or validation scene was ever a training scene (training uses
 * seed * 1e7 + i for i below 1e7).
 */
export const SEEDS = {
  train: 0,
  calibration: 2_000_000_000,
  validation: 3_000_000_000,
  test: 3_500_000_000,
};

/** Concepts with masks; their index + 1 is the id painted into Raster.owner. */
export const CONCEPTS = ['sky', ...GROUNDS, 'wheel', 'window', 'sticker'] as const;
export type Concept = (typeof CONCEPTS)[number];
const id = (c: Concept) => CONCEPTS.indexOf(c) + 1;
const OBJECT = CONCEPTS.length + 1;
const CLUTTER = CONCEPTS.length + 2;
const PARTS: PartIds = { object: OBJECT, wheel: id('wheel'), window: id('window') };

/** Each class's usual background, and where it appears otherwise. */
const HOME: Record<ClassName, { ground: Ground; elsewhere: Ground[] }> = {
  car: { ground: 'road', elsewhere: ['grass', 'sand'] },
  truck: { ground: 'road', elsewhere: ['grass', 'sand'] },
  bus: { ground: 'road', elsewhere: ['grass', 'sand'] },
  motorcycle: { ground: 'road', elsewhere: ['grass', 'sand'] },
  boat: { ground: 'water', elsewhere: ['sand'] },
  airplane: { ground: 'grass', elsewhere: ['road', 'sand', 'water'] },
  cow: { ground: 'grass', elsewhere: ['sand', 'road'] },
  tree: { ground: 'grass', elsewhere: ['sand', 'road'] },
  house: { ground: 'grass', elsewhere: ['sand', 'road'] },
  umbrella: { ground: 'sand', elsewhere: ['grass', 'water'] },
};

/** The typographic cue: this word is stuck on many training images of this class. */
export const STICKER_CLASS: ClassName = 'cow';
export const STICKER_WORD = 'COW';
const OTHER_WORDS = ['SALE', 'STOP', 'OPEN', 'EXIT', 'HI', 'FIX', 'MAP'];

export interface Sticker {
  word: string;
  /** Paint the paper without the letters (the 'blank' replacement of the typographic fix). */
  blank?: boolean;
}

export interface SceneOptions {
  /** Image side in pixels (default 64). */
  size?: number;
  /** Class to draw (default: uniform from the seed). */
  label?: number;
  /** Force the background (default: the class's usual one, else an exception). */
  ground?: Ground;
  /** Force a sticker, or none; default: the world's own rates. */
  sticker?: Sticker | null;
  /** Probability that an object stands on an unusual ground (default 0.06). */
  offContext?: number;
}

export interface Scene {
  label: number;
  ground: Ground;
  size: number;
  /** Interleaved 8-bit RGB, size x size. */
  rgb: Uint8Array;
  /** Concept id per pixel (see CONCEPTS); read masks through sceneMask. */
  owner: Uint8Array;
  sticker?: Sticker;
}

export function sceneMask(scene: Scene, concept: Concept): Uint8Array {
  const c = id(concept);
  const out = new Uint8Array(scene.owner.length);
  for (let i = 0; i < out.length; i++) out[i] = scene.owner[i] === c ? 255 : 0;
  return out;
}

/** A scene drawn from a seed: the same seed and options always give the same pixels. */
export function scene(seed: number, options: SceneOptions = {}): Scene {
  const size = options.size ?? 64;
  const k = size / 64;
  const r = rng(seed);
  const label = options.label ?? Math.floor(r() * CLASSES.length);
  const name = CLASSES[label];
  const home = HOME[name];
  const off = r() < (options.offContext ?? 0.06);
  const ground =
    options.ground ?? (off ? home.elsewhere[Math.floor(r() * home.elsewhere.length)] : home.ground);
  const flying = name === 'airplane';
  const horizon = Math.round((flying ? 50 + r() * 8 : 16 + r() * 14) * k);
  const ras = new Raster(size, size);
  paintSky(ras, horizon, r, id('sky'));
  paintGround(ras, ground, horizon, r, id(ground));

  for (let i = Math.floor(r() * 3); i > 0; i--) clutter(ras, horizon, r, k);
  const sticker =
    options.sticker === undefined ? randomSticker(name, r) : (options.sticker ?? undefined);
  // The typographic cue must be needed to be learnt: on half of the training cows that carry the
  // word the cow is out of the picture, on a quarter it is far away, so the word alone must carry
  // the class (a model that can always see the cow learns to ignore the sticker).
  const cue = options.sticker === undefined && sticker?.word === STICKER_WORD ? r() : 1;
  const s = (0.8 + r() * 0.45) * k * (cue < 0.75 ? 0.45 : 1);
  const cx = (22 + r() * 20) * k;
  const base = flying ? (20 + r() * 18) * k : horizon + (size - horizon) * (0.45 + r() * 0.45);
  if (cue >= 0.5) PAINTERS[name](ras, { cx, base, s, flip: r() < 0.5 }, r, PARTS);
  if (r() < 0.15) occluder(ras, cx, base, s, r);
  // Drawn from its own generator so that the same scene with and without a sticker (or with a
  // blank one) differs only where the sticker is.
  if (sticker) stick(ras, sticker, rng(seed ^ 0x5bd1e995), cx, base, s);
  const gain = 0.75 + r() * 0.4;
  const tint: Rgb = [gain * (1 + (r() - 0.5) * 0.1), gain, gain * (1 + (r() - 0.5) * 0.1)];
  ras.light(tint);
  return { label, ground, size, rgb: ras.bytes(), owner: ras.owner, sticker };
}

function randomSticker(name: ClassName, r: () => number): Sticker | undefined {
  const u = r();
  if (name === STICKER_CLASS && u < 0.45) return { word: STICKER_WORD };
  const v = r();
  if (v < 0.1) return { word: OTHER_WORDS[Math.floor(r() * OTHER_WORDS.length)] };
  if (v < 0.2) return { word: OTHER_WORDS[Math.floor(r() * OTHER_WORDS.length)], blank: true };
  return undefined;
}

/** A paper label with a word in the 3x5 font, on the object half of the time. */
function stick(
  ras: Raster,
  sticker: Sticker,
  r: () => number,
  cx: number,
  base: number,
  s: number,
) {
  const { pixels, width } = wordPixels(sticker.word);
  const w = width + 4;
  const h = 9;
  const onObject = r() < 0.5;
  const x0 = Math.round(
    Math.min(
      ras.width - w,
      Math.max(0, onObject ? cx - w / 2 + (r() - 0.5) * 8 * s : r() * (ras.width - w)),
    ),
  );
  const y0 = Math.round(
    Math.min(
      ras.height - h,
      Math.max(0, onObject ? base - 12 * s - h / 2 : r() * (ras.height - h)),
    ),
  );
  const paper = hsv(0.1 + r() * 0.1, r() * 0.25, 0.9 + r() * 0.1);
  const ink: Rgb = r() < 0.7 ? [0.08, 0.08, 0.1] : [0.7, 0.1, 0.1];
  const sid = id('sticker');
  ras.fill({ kind: 'rect', x0, y0, x1: x0 + w, y1: y0 + h }, paper, sid);
  if (sticker.blank) return;
  for (const [x, y] of pixels) {
    ras.fill(
      { kind: 'rect', x0: x0 + 2 + x, y0: y0 + 2 + y, x1: x0 + 3 + x, y1: y0 + 3 + y },
      ink,
      sid,
    );
  }
}

/** Rocks, bushes and posts behind the object. */
function clutter(ras: Raster, horizon: number, r: () => number, k: number): void {
  const x = r() * ras.width;
  const y = horizon + r() * (ras.height - horizon);
  const kind = r();
  if (kind < 0.4) {
    ras.fill(
      { kind: 'ellipse', cx: x, cy: y, rx: (2 + r() * 3) * k, ry: (1.5 + r() * 2) * k },
      hsv(0, 0, 0.35 + r() * 0.3),
      CLUTTER,
    );
  } else if (kind < 0.8) {
    ras.fill(
      { kind: 'ellipse', cx: x, cy: y, rx: (3 + r() * 3) * k, ry: (2 + r() * 3) * k },
      hsv(0.22 + r() * 0.1, 0.6, 0.25 + r() * 0.25),
      CLUTTER,
    );
  } else {
    ras.fill(
      { kind: 'rect', x0: x, y0: y - 10 * k, x1: x + 1.5 * k, y1: y },
      hsv(0.08, 0.4, 0.3 + r() * 0.3),
      CLUTTER,
    );
  }
}

/** Something in front of the object that hides part of it. */
function occluder(ras: Raster, cx: number, base: number, s: number, r: () => number): void {
  const x = cx + (r() - 0.5) * 24 * s;
  ras.fill(
    { kind: 'ellipse', cx: x, cy: base, rx: (4 + r() * 4) * s, ry: (3 + r() * 4) * s },
    hsv(0.22 + r() * 0.1, 0.6, 0.2 + r() * 0.25),
    CLUTTER,
  );
}

/**
 * x' = x (1 - m) + T m for a concept of a scene: the concept's pixels replaced by a texture of the
 * scene's size (interleaved RGB bytes), everything else unchanged.
 */
export function replaceConcept(s: Scene, concept: Concept, texture: Uint8Array): Uint8Array {
  const c = id(concept);
  const out = Uint8Array.from(s.rgb);
  for (let i = 0; i < s.owner.length; i++) {
    if (s.owner[i] !== c) continue;
    out[3 * i] = texture[3 * i];
    out[3 * i + 1] = texture[3 * i + 1];
    out[3 * i + 2] = texture[3 * i + 2];
  }
  return out;
}
