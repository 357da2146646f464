import { hsv } from './objects.js';
import { Raster, type Rgb } from './raster.js';
import { rng } from '../util/random.js';

/**
 * Procedural texture styles for the scene world, several distinct images per style (so "the same
 * style image" and "held-out images of the same style" can be told apart, docs/method.md section 9).
 * None of them occurs in the world's training scenes.
 */
export const STYLES = [
  'snow',
  'wood',
  'gravel',
  'graffiti',
  'foliage',
  'flowers',
  'fur',
  'black_and_white',
] as const;
export type StyleName = (typeof STYLES)[number];
export const STYLE_IMAGES = 4;

const clamp = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);
const add = (c: Rgb, n: number): Rgb => [clamp(c[0] + n), clamp(c[1] + n), clamp(c[2] + n)];

/** Interleaved 8-bit RGB texture: style `name`, image number `variant`. */
export function styleTexture(
  name: StyleName,
  variant: number,
  width: number,
  height = width,
): Uint8Array {
  const r = rng(0x9e3779b9 ^ (STYLES.indexOf(name) * 7919 + variant * 104729));
  const ras = new Raster(width, height);
  const all = { kind: 'rect' as const, x0: 0, y0: 0, x1: width, y1: height };
  const k = width / 64;
  const noise = (a: number) => (r() - 0.5) * 2 * a;
  switch (name) {
    case 'snow': {
      // Bright, bluish-white, sparkling, with soft shadows and sometimes tyre tracks.
      const base: Rgb = [0.9 + noise(0.04), 0.92 + noise(0.03), 0.96];
      const shadows = Array.from({ length: 3 + variant }, () => [
        r() * width,
        r() * height,
        (6 + r() * 10) * k,
      ]);
      const tracks = variant % 2 === 0;
      const slope = (r() - 0.5) * 0.8;
      ras.fill(
        all,
        (x, y) => {
          let c: Rgb = add(base, noise(0.03) + (r() < 0.02 ? 0.08 : 0));
          for (const [sx, sy, sr] of shadows) {
            if ((x - sx) ** 2 + ((y - sy) * 1.6) ** 2 < sr * sr)
              c = [c[0] * 0.86, c[1] * 0.9, c[2] * 0.97];
          }
          const t = (x - slope * y) / k;
          if (tracks && (Math.abs((t % 24) - 6) < 1.5 || Math.abs((t % 24) - 14) < 1.5)) {
            c = [c[0] * 0.8, c[1] * 0.82, c[2] * 0.88];
          }
          return c;
        },
        1,
      );
      break;
    }
    case 'wood': {
      const base = hsv(0.06 + variant * 0.01, 0.55 + noise(0.1), 0.55 + noise(0.1));
      const f = (0.35 + r() * 0.3) / k;
      ras.fill(
        all,
        (x, y) => {
          const ring = Math.sin(y * f + Math.sin((x * 0.05) / k + variant) * 3);
          return add(
            [
              base[0] * (0.8 + 0.2 * ring),
              base[1] * (0.8 + 0.2 * ring),
              base[2] * (0.8 + 0.2 * ring),
            ],
            noise(0.02),
          );
        },
        1,
      );
      break;
    }
    case 'gravel': {
      ras.fill(all, () => add([0.5, 0.48, 0.45], noise(0.06)), 1);
      for (let i = 0; i < 160 * k * k; i++) {
        const v = 0.3 + r() * 0.5;
        const rr = (0.8 + r() * 1.8) * k;
        ras.fill(
          {
            kind: 'ellipse',
            cx: r() * width,
            cy: r() * height,
            rx: rr,
            ry: rr * (0.6 + r() * 0.4),
          },
          [v, v * 0.97, v * 0.93],
          1,
        );
      }
      break;
    }
    case 'graffiti': {
      ras.fill(all, () => add([0.7, 0.68, 0.64], noise(0.05)), 1);
      for (let i = 0; i < 14 + variant * 3; i++) {
        const c = hsv(r(), 0.8, 0.5 + r() * 0.5);
        const x = r() * width;
        const y = r() * height;
        const len = (8 + r() * 20) * k;
        const ang = r() * Math.PI;
        const w = (1 + r() * 2) * k;
        const dx = Math.cos(ang) * len;
        const dy = Math.sin(ang) * len;
        const nx = -Math.sin(ang) * w;
        const ny = Math.cos(ang) * w;
        ras.fill(
          {
            kind: 'polygon',
            points: [
              [x, y],
              [x + dx, y + dy],
              [x + dx + nx, y + dy + ny],
              [x + nx, y + ny],
            ],
          },
          c,
          1,
        );
      }
      break;
    }
    case 'foliage': {
      ras.fill(all, () => add([0.35, 0.2, 0.08], noise(0.05)), 1);
      for (let i = 0; i < 220 * k * k; i++) {
        const c = hsv(0.02 + r() * 0.1, 0.7 + r() * 0.3, 0.5 + r() * 0.45);
        const rr = (1.5 + r() * 2) * k;
        ras.fill(
          { kind: 'ellipse', cx: r() * width, cy: r() * height, rx: rr, ry: rr * 0.6 },
          c,
          1,
        );
      }
      break;
    }
    case 'flowers': {
      ras.fill(all, () => add([0.2, 0.45, 0.15], noise(0.06)), 1);
      for (let i = 0; i < 70 * k * k; i++) {
        const c = hsv(r(), 0.7, 0.9);
        const x = r() * width;
        const y = r() * height;
        const rr = (1.2 + r()) * k;
        ras.fill({ kind: 'ellipse', cx: x, cy: y, rx: rr * 1.6, ry: rr * 1.6 }, c, 1);
        ras.fill(
          { kind: 'ellipse', cx: x, cy: y, rx: rr * 0.6, ry: rr * 0.6 },
          [0.95, 0.85, 0.2],
          1,
        );
      }
      break;
    }
    case 'fur': {
      const base = hsv(0.07 + noise(0.03), 0.4 + r() * 0.3, 0.35 + r() * 0.4);
      const ang = r() * Math.PI;
      const c = Math.cos(ang);
      const s = Math.sin(ang);
      ras.fill(
        all,
        (x, y) => {
          const along = Math.sin(
            ((x * s - y * c) * 1.7) / k + Math.sin(((x * c + y * s) * 0.2) / k) * 2,
          );
          return add(base, along * 0.08 + noise(0.05));
        },
        1,
      );
      break;
    }
    case 'black_and_white': {
      const f = (0.25 + r() * 0.25) / k;
      const kind = variant % 3;
      ras.fill(
        all,
        (x, y) => {
          const v =
            kind === 0
              ? Math.sin(x * f + Math.sin(y * f * 0.7) * 2)
              : kind === 1
                ? Math.sin(x * f) * Math.sin(y * f)
                : Math.sin(Math.hypot(x - width / 2, y - height / 2) * f);
          const b = v > 0 ? 0.92 : 0.08;
          return add([b, b, b], noise(0.03));
        },
        1,
      );
      break;
    }
  }
  return ras.bytes();
}
