import type { Raster, Rgb } from './raster.js';

/** The backgrounds of the world; each is a concept with a pixel mask. */
export const GROUNDS = ['road', 'grass', 'water', 'sand'] as const;
export type Ground = (typeof GROUNDS)[number];

const clamp = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);
const jitter = (c: Rgb, r: () => number, amount: number): Rgb => {
  const n = (r() - 0.5) * 2 * amount;
  return [clamp(c[0] + n), clamp(c[1] + n), clamp(c[2] + n)];
};
const vary = (c: Rgb, r: () => number, amount: number): Rgb => [
  clamp(c[0] + (r() - 0.5) * amount),
  clamp(c[1] + (r() - 0.5) * amount),
  clamp(c[2] + (r() - 0.5) * amount),
];

/** Sky from the top of the image down to the horizon: a vertical gradient, sometimes clouds. */
export function paintSky(ras: Raster, horizon: number, r: () => number, concept: number): void {
  const top = vary([0.32, 0.52, 0.88], r, 0.12);
  const low = vary([0.72, 0.83, 0.95], r, 0.08);
  const h = Math.max(1, horizon);
  ras.fill(
    { kind: 'rect', x0: 0, y0: 0, x1: ras.width, y1: horizon },
    (_x, y) => {
      const t = y / h;
      return jitter(
        [
          top[0] + (low[0] - top[0]) * t,
          top[1] + (low[1] - top[1]) * t,
          top[2] + (low[2] - top[2]) * t,
        ],
        r,
        0.015,
      );
    },
    concept,
  );
  const clouds = Math.floor(r() * 3);
  for (let i = 0; i < clouds; i++) {
    const cx = r() * ras.width;
    const cy = r() * horizon * 0.7;
    const rx = 4 + r() * 8;
    ras.fill(
      { kind: 'ellipse', cx, cy, rx, ry: rx * (0.3 + r() * 0.2) },
      (_x, _y) => jitter([0.95, 0.96, 0.98], r, 0.02),
      concept,
    );
  }
}

/** One ground from the horizon to the bottom of the image. */
export function paintGround(
  ras: Raster,
  ground: Ground,
  horizon: number,
  r: () => number,
  concept: number,
): void {
  const area = { kind: 'rect' as const, x0: 0, y0: horizon, x1: ras.width, y1: ras.height };
  if (ground === 'road') {
    const base = jitter([0.36, 0.36, 0.38], r, 0.1);
    const line: Rgb = r() < 0.5 ? [0.93, 0.93, 0.9] : [0.92, 0.8, 0.2];
    const lane = horizon + (ras.height - horizon) * (0.45 + r() * 0.3);
    const dash = 5 + Math.floor(r() * 3);
    const phase = Math.floor(r() * 10);
    const kerb = r() < 0.5;
    ras.fill(
      area,
      (x, y) => {
        if (Math.abs(y - lane) < 1 && (x + phase) % (2 * dash) < dash) return jitter(line, r, 0.03);
        if (kerb && y < horizon + 2) return jitter([0.62, 0.62, 0.6], r, 0.03);
        return jitter(base, r, 0.05);
      },
      concept,
    );
  } else if (ground === 'grass') {
    const base = vary([0.27, 0.55, 0.2], r, 0.12);
    ras.fill(area, (x, y) => vary(base, r, 0.16 + 0.08 * ((x * 7 + y * 3) % 3)), concept);
  } else if (ground === 'water') {
    const base = vary([0.12, 0.36, 0.66], r, 0.1);
    const f = 0.5 + r() * 0.4;
    const g = 0.8 + r() * 0.6;
    ras.fill(
      area,
      (x, y) => {
        const wave = Math.sin(x * f + y * g * 2.7) * Math.sin(y * g);
        return wave > 0.75 ? jitter([0.7, 0.82, 0.92], r, 0.04) : jitter(base, r, 0.04);
      },
      concept,
    );
  } else {
    const base = vary([0.84, 0.74, 0.52], r, 0.08);
    const f = 0.6 + r() * 0.5;
    ras.fill(
      area,
      (x, y) => {
        const ripple = Math.sin(y * f * 2 + Math.sin(x * 0.3) * 1.5) * 0.04;
        return jitter([base[0] + ripple, base[1] + ripple, base[2] + ripple], r, 0.04);
      },
      concept,
    );
  }
}
