import type { Paint, Raster, Rgb } from './raster.js';

/** Concept ids the object painters mark pixels with (see CONCEPTS in world.ts). */
export interface PartIds {
  object: number;
  wheel: number;
  window: number;
}

/** Where and how big: the object stands on (cx, base); s scales every length. */
export interface Placement {
  cx: number;
  base: number;
  s: number;
  /** true: faces left (the painters are drawn facing right). */
  flip: boolean;
}

export type Painter = (ras: Raster, at: Placement, r: () => number, ids: PartIds) => void;

export function hsv(h: number, s: number, v: number): Rgb {
  const f = (n: number) => {
    const k = (n + h * 6) % 6;
    return v - v * s * Math.max(0, Math.min(k, 4 - k, 1));
  };
  return [f(5), f(3), f(1)];
}

const saturated = (r: () => number): Rgb => hsv(r(), 0.55 + r() * 0.4, 0.45 + r() * 0.5);
const shade = (c: Rgb, k: number): Rgb => [c[0] * k, c[1] * k, c[2] * k];
const GLASS: Rgb = [0.62, 0.78, 0.88];
const TYRE: Rgb = [0.07, 0.07, 0.08];

/** Shapes in object coordinates (x right of cx, y up from the base), mirrored when flipped. */
function pen(ras: Raster, at: Placement) {
  const X = (x: number) => at.cx + (at.flip ? -x : x) * at.s;
  const Y = (y: number) => at.base - y * at.s;
  return {
    rect(x0: number, y0: number, x1: number, y1: number, paint: Paint, id: number) {
      const [a, b] = [X(x0), X(x1)].sort((p, q) => p - q);
      ras.fill({ kind: 'rect', x0: a, y0: Y(y1), x1: b, y1: Y(y0) }, paint, id);
    },
    ellipse(x: number, y: number, rx: number, ry: number, paint: Paint, id: number) {
      ras.fill({ kind: 'ellipse', cx: X(x), cy: Y(y), rx: rx * at.s, ry: ry * at.s }, paint, id);
    },
    poly(points: [number, number][], paint: Paint, id: number) {
      ras.fill({ kind: 'polygon', points: points.map(([x, y]) => [X(x), Y(y)]) }, paint, id);
    },
  };
}

function wheel(p: ReturnType<typeof pen>, x: number, radius: number, ids: PartIds): void {
  p.ellipse(x, radius, radius, radius, TYRE, ids.wheel);
  p.ellipse(x, radius, radius * 0.4, radius * 0.4, [0.6, 0.6, 0.62], ids.wheel);
}

const car: Painter = (ras, at, r, ids) => {
  const p = pen(ras, at);
  const body = saturated(r);
  const L = 11 + r() * 3;
  p.rect(-L, 2.5, L, 9, body, ids.object);
  p.poly(
    [
      [-L * 0.55, 9],
      [L * 0.45, 9],
      [L * 0.25, 14.5],
      [-L * 0.35, 14.5],
    ],
    shade(body, 0.9),
    ids.object,
  );
  p.poly(
    [
      [-L * 0.42, 9.5],
      [-0.5, 9.5],
      [-0.5, 13.5],
      [-L * 0.27, 13.5],
    ],
    GLASS,
    ids.window,
  );
  p.poly(
    [
      [0.5, 9.5],
      [L * 0.36, 9.5],
      [L * 0.2, 13.5],
      [0.5, 13.5],
    ],
    GLASS,
    ids.window,
  );
  p.rect(L - 1.5, 6, L, 7.5, [1, 0.95, 0.6], ids.object);
  wheel(p, -L * 0.6, 3.2, ids);
  wheel(p, L * 0.6, 3.2, ids);
};

const truck: Painter = (ras, at, r, ids) => {
  const p = pen(ras, at);
  const cab = saturated(r);
  const box: Rgb = r() < 0.5 ? [0.85, 0.85, 0.85] : saturated(r);
  const L = 20 + r() * 4;
  p.rect(-L / 2, 3, L / 2 - 1, 19, box, ids.object);
  p.rect(L / 2, 3, L / 2 + 9, 14, cab, ids.object);
  p.rect(L / 2 + 3, 9, L / 2 + 8, 13, GLASS, ids.window);
  p.rect(-L / 2, 3, L / 2 + 9, 4.5, [0.2, 0.2, 0.22], ids.object);
  wheel(p, -L / 2 + 4, 3.4, ids);
  wheel(p, -L / 2 + 11, 3.4, ids);
  wheel(p, L / 2 + 5, 3.4, ids);
};

const bus: Painter = (ras, at, r, ids) => {
  const p = pen(ras, at);
  const body: Rgb = r() < 0.6 ? hsv(0.12 + r() * 0.04, 0.85, 0.95) : saturated(r);
  const L = 16 + r() * 4;
  p.rect(-L, 3, L, 18, body, ids.object);
  const n = 5 + Math.floor(r() * 2);
  const w = (2 * L - 4) / n;
  for (let i = 0; i < n; i++)
    p.rect(-L + 2 + i * w + 0.6, 11, -L + 2 + (i + 1) * w - 0.6, 16, GLASS, ids.window);
  p.rect(L - 5, 4, L - 2, 10, shade(body, 0.6), ids.object);
  wheel(p, -L + 6, 3.2, ids);
  wheel(p, L - 7, 3.2, ids);
};

const motorcycle: Painter = (ras, at, r, ids) => {
  const p = pen(ras, at);
  const body = saturated(r);
  wheel(p, -7, 3.6, ids);
  wheel(p, 7, 3.6, ids);
  p.poly(
    [
      [-7, 4],
      [-1, 9],
      [5, 9],
      [7, 4],
      [5, 4],
      [3, 7],
      [-1, 7],
      [-5, 4],
    ],
    body,
    ids.object,
  );
  p.rect(-4, 9, 1, 10.5, [0.1, 0.1, 0.1], ids.object);
  p.rect(5, 9, 6, 13, [0.3, 0.3, 0.3], ids.object);
  if (r() < 0.7) {
    const jacket = saturated(r);
    p.poly(
      [
        [-3, 10],
        [0, 10],
        [3, 16],
        [0, 17],
      ],
      jacket,
      ids.object,
    );
    p.ellipse(1.5, 19, 2, 2, hsv(r(), 0.3, 0.4 + r() * 0.5), ids.object);
  }
};

const boat: Painter = (ras, at, r, ids) => {
  const p = pen(ras, at);
  const hull = saturated(r);
  const L = 12 + r() * 4;
  p.poly(
    [
      [-L, 6],
      [L + 3, 6],
      [L - 2, 0],
      [-L + 3, 0],
    ],
    hull,
    ids.object,
  );
  p.rect(-L, 5, L + 3, 6, [0.95, 0.95, 0.95], ids.object);
  p.rect(-L * 0.5, 6, L * 0.2, 10, [0.92, 0.92, 0.9], ids.object);
  for (let i = 0; i < 3; i++) p.ellipse(-L * 0.4 + i * 3, 8, 0.9, 0.9, GLASS, ids.window);
  if (r() < 0.7) {
    p.rect(L * 0.35, 6, L * 0.35 + 1, 24, [0.4, 0.3, 0.2], ids.object);
    p.poly(
      [
        [L * 0.35 + 1.5, 23],
        [L * 0.35 + 1.5, 8],
        [L * 0.35 + 11, 8],
      ],
      [0.97, 0.97, 0.95],
      ids.object,
    );
  }
};

const airplane: Painter = (ras, at, r, ids) => {
  const p = pen(ras, at);
  const body = hsv(r(), r() * 0.2, 0.8 + r() * 0.2);
  const stripe = saturated(r);
  p.poly(
    [
      [-2, 6],
      [4, 6],
      [-6, -4],
      [-10, -4],
    ],
    shade(body, 0.85),
    ids.object,
  );
  p.ellipse(0, 6, 17, 3.2, body, ids.object);
  p.rect(-14, 5, 14, 6, stripe, ids.object);
  p.poly(
    [
      [-17, 6],
      [-13, 6],
      [-16, 13],
      [-19, 13],
    ],
    stripe,
    ids.object,
  );
  for (let i = 0; i < 6; i++) p.rect(-9 + i * 3, 7, -8 + i * 3, 8, [0.2, 0.3, 0.4], ids.window);
  p.poly(
    [
      [-1, 6],
      [3, 6],
      [-4, 14],
      [-7, 14],
    ],
    shade(body, 0.9),
    ids.object,
  );
};

const cow: Painter = (ras, at, r, ids) => {
  const p = pen(ras, at);
  const spotted = r() < 0.6;
  const coat: Rgb = spotted ? [0.95, 0.94, 0.9] : hsv(0.06 + r() * 0.03, 0.6, 0.35 + r() * 0.3);
  for (const x of [-7, -4.5, 5, 7.5]) p.rect(x - 0.8, 0, x + 0.8, 6, shade(coat, 0.8), ids.object);
  p.ellipse(0, 9, 10, 4.5, coat, ids.object);
  if (spotted) {
    for (let i = 0; i < 4; i++) {
      p.ellipse(
        -7 + r() * 13,
        7 + r() * 5,
        1.5 + r() * 1.5,
        1 + r(),
        [0.08, 0.08, 0.08],
        ids.object,
      );
    }
  }
  p.ellipse(11, 11, 3, 2.3, coat, ids.object);
  p.rect(10, 13, 10.8, 15, [0.9, 0.88, 0.8], ids.object);
  p.rect(12.5, 13, 13.3, 15, [0.9, 0.88, 0.8], ids.object);
  p.rect(-11, 6, -10, 10, shade(coat, 0.7), ids.object);
};

const tree: Painter = (ras, at, r, ids) => {
  const p = pen(ras, at);
  const leaves = hsv(0.25 + r() * 0.12, 0.6 + r() * 0.3, 0.3 + r() * 0.3);
  p.rect(-1.5, 0, 1.5, 12, [0.4, 0.26, 0.14], ids.object);
  if (r() < 0.5) {
    p.poly(
      [
        [-9, 6],
        [9, 6],
        [0, 30],
      ],
      leaves,
      ids.object,
    );
  } else {
    p.ellipse(0, 17, 9, 8, leaves, ids.object);
    p.ellipse(-4, 21, 5, 5, shade(leaves, 1.15), ids.object);
  }
};

const house: Painter = (ras, at, r, ids) => {
  const p = pen(ras, at);
  const wall: Rgb = hsv(r() * 0.12, 0.2 + r() * 0.4, 0.6 + r() * 0.35);
  const roof: Rgb = hsv(r() * 0.06, 0.5 + r() * 0.3, 0.3 + r() * 0.3);
  p.rect(-10, 0, 10, 13, wall, ids.object);
  p.poly(
    [
      [-12, 13],
      [12, 13],
      [0, 22],
    ],
    roof,
    ids.object,
  );
  p.rect(-2, 0, 2, 7, [0.35, 0.22, 0.12], ids.object);
  p.rect(-8, 6, -4, 10, GLASS, ids.window);
  p.rect(4, 6, 8, 10, GLASS, ids.window);
};

const umbrella: Painter = (ras, at, r, ids) => {
  const p = pen(ras, at);
  const a = saturated(r);
  const b: Rgb = r() < 0.5 ? [0.97, 0.97, 0.95] : saturated(r);
  p.rect(-0.6, 0, 0.6, 15, [0.85, 0.85, 0.85], ids.object);
  const stripes = 6;
  // A canopy of alternating wedges, as beach umbrellas are painted.
  for (let i = 0; i < stripes; i++) {
    const t0 = Math.PI * (i / stripes);
    const t1 = Math.PI * ((i + 1) / stripes);
    p.poly(
      [
        [0, 15],
        [12 * Math.cos(t0), 15 + 7 * Math.sin(t0)],
        [12 * Math.cos((t0 + t1) / 2), 15 + 7 * Math.sin((t0 + t1) / 2)],
        [12 * Math.cos(t1), 15 + 7 * Math.sin(t1)],
      ],
      i % 2 ? a : b,
      ids.object,
    );
  }
  if (r() < 0.6) p.rect(4, 0, 14, 2, saturated(r), ids.object);
};

export const PAINTERS = { car, truck, bus, motorcycle, boat, airplane, cow, tree, house, umbrella };
