/**
 * A tiny rasterizer for the scene world: RGB in [0,1] plus, per pixel, the id of the concept that
 * painted it last, so every concept's mask is exact (what is visible, after occlusion).
 */
export type Rgb = [number, number, number];
/** A colour, or a colour per pixel (textures). */
export type Paint = Rgb | ((x: number, y: number) => Rgb);

export type Shape =
  | { kind: 'rect'; x0: number; y0: number; x1: number; y1: number }
  | { kind: 'ellipse'; cx: number; cy: number; rx: number; ry: number }
  | { kind: 'polygon'; points: [number, number][] };

export class Raster {
  readonly rgb: Float32Array;
  /** Concept id of the last paint at each pixel (0 = none). */
  readonly owner: Uint8Array;

  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.rgb = new Float32Array(3 * width * height);
    this.owner = new Uint8Array(width * height);
  }

  /** Paint the pixels whose centres fall inside the shape; they now belong to `concept`. */
  fill(shape: Shape, paint: Paint, concept: number): void {
    const [bx0, by0, bx1, by1] = bounds(shape);
    const x0 = Math.max(0, Math.floor(bx0));
    const y0 = Math.max(0, Math.floor(by0));
    const x1 = Math.min(this.width - 1, Math.ceil(bx1));
    const y1 = Math.min(this.height - 1, Math.ceil(by1));
    const inside = insideTest(shape);
    const fixed = typeof paint === 'function' ? null : paint;
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        if (!inside(x + 0.5, y + 0.5)) continue;
        const c = fixed ?? (paint as (x: number, y: number) => Rgb)(x, y);
        const i = y * this.width + x;
        this.rgb[3 * i] = c[0];
        this.rgb[3 * i + 1] = c[1];
        this.rgb[3 * i + 2] = c[2];
        this.owner[i] = concept;
      }
    }
  }

  /** Scale every pixel (lighting) and clamp to [0,1]. */
  light(gain: Rgb): void {
    for (let i = 0; i < this.rgb.length; i++) {
      this.rgb[i] = Math.min(1, Math.max(0, this.rgb[i] * gain[i % 3]));
    }
  }

  /** 8-bit interleaved RGB. */
  bytes(): Uint8Array {
    const out = new Uint8Array(this.rgb.length);
    for (let i = 0; i < out.length; i++) out[i] = Math.round(this.rgb[i] * 255);
    return out;
  }

  /** 255 where `concept` is visible, else 0. */
  mask(concept: number): Uint8Array {
    const out = new Uint8Array(this.owner.length);
    for (let i = 0; i < out.length; i++) out[i] = this.owner[i] === concept ? 255 : 0;
    return out;
  }
}

function bounds(s: Shape): [number, number, number, number] {
  if (s.kind === 'rect') return [s.x0, s.y0, s.x1, s.y1];
  if (s.kind === 'ellipse') return [s.cx - s.rx, s.cy - s.ry, s.cx + s.rx, s.cy + s.ry];
  const xs = s.points.map((p) => p[0]);
  const ys = s.points.map((p) => p[1]);
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}

function insideTest(s: Shape): (x: number, y: number) => boolean {
  if (s.kind === 'rect') return (x, y) => x >= s.x0 && x < s.x1 && y >= s.y0 && y < s.y1;
  if (s.kind === 'ellipse') {
    return (x, y) => ((x - s.cx) / s.rx) ** 2 + ((y - s.cy) / s.ry) ** 2 <= 1;
  }
  const p = s.points;
  // Even-odd rule: a ray to the right crosses the boundary an odd number of times.
  return (x, y) => {
    let inside = false;
    for (let i = 0, j = p.length - 1; i < p.length; j = i++) {
      const [xi, yi] = p[i];
      const [xj, yj] = p[j];
      if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
    }
    return inside;
  };
}
