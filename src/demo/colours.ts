// A placeholder demo world until the trained scene model exists: a classifier whose weights are
// set by hand (no training) to name the colour of the patch in an image, and images to test it.
import sharp from 'sharp';
import { GraphBuilder } from '../onnx/build.ts';
import type { OnnxModel } from '../onnx/model.ts';
import { rng } from '../util/random.ts';

/** Class colours in normalized units ((pixel/255 - 0.5) / 0.5, so -1..1 per channel). */
export const COLOURS: [string, number[]][] = [
  ['red', [1, -1, -1]],
  ['green', [-1, 1, -1]],
  ['blue', [-1, -1, 1]],
  ['yellow', [1, 1, -1]],
  ['cyan', [-1, 1, 1]],
  ['magenta', [1, -1, 1]],
];

export const SIZE = 32;

export const PREPROCESS = {
  input: 'image',
  output: 'logits',
  layout: 'NCHW',
  size: SIZE,
  crop_fraction: 1,
  resize: 'bilinear',
  mean: [0.5, 0.5, 0.5],
  std: [0.5, 0.5, 0.5],
  labels: 'labels.txt',
};

/**
 * Conv 3x3 (a nearest-prototype score per colour: c.x - |c|^2/2, averaged over the window) ->
 * BatchNormalization -> Relu -> GlobalAveragePool -> Flatten -> Gemm. A grey background scores
 * below zero for every colour, so only the patch votes.
 */
export function colourModel(): OnnxModel {
  const k = COLOURS.length;
  const g = new GraphBuilder(13);
  g.input('image', ['N', 3, SIZE, SIZE]);
  const w = new Float32Array(k * 3 * 9);
  COLOURS.forEach(([, c], o) => {
    for (let i = 0; i < 3; i++) for (let t = 0; t < 9; t++) w[(o * 3 + i) * 9 + t] = c[i] / 9;
  });
  const b = Float32Array.from(COLOURS, ([, c]) => -c.reduce((s, v) => s + v * v, 0) / 2);
  let x = g.node(
    'Conv',
    ['image', g.init('score.weight', [k, 3, 3, 3], w), g.init('score.bias', [k], b)],
    { pads: [1, 1, 1, 1] },
    'score',
  );
  const ones = new Float32Array(k).fill(1);
  x = g.node(
    'BatchNormalization',
    [
      x,
      g.init(
        'bn.scale',
        [k],
        ones.map(() => 4),
      ),
      g.init('bn.bias', [k], new Float32Array(k)),
      g.init('bn.mean', [k], new Float32Array(k)),
      g.init('bn.var', [k], ones),
    ],
    { epsilon: { float: 1e-5 } },
    'bn',
  );
  x = g.node('Relu', [x], {}, 'relu');
  x = g.node('GlobalAveragePool', [x], {}, 'pool');
  x = g.node('Flatten', [x], {}, 'flatten');
  const eye = new Float32Array(k * k).map((_, i) => (i % (k + 1) === 0 ? 10 : 0));
  g.node(
    'Gemm',
    [x, g.init('fc.weight', [k, k], eye), g.init('fc.bias', [k], new Float32Array(k))],
    { transB: 1 },
    'logits',
  );
  g.output('logits', ['N', k]);
  return g.build();
}

/** A PNG of a patch of colour `cls` (randomly placed, sized and dimmed) on a noisy grey ground. */
export async function colourImage(cls: number, seed: number): Promise<Buffer> {
  const u = rng(seed);
  const px = new Uint8Array(SIZE * SIZE * 3);
  const rgb = COLOURS[cls][1].map((v) => (v > 0 ? 200 + 55 * u() : 55 * u()));
  const side = 8 + Math.floor(u() * 12);
  const [x0, y0] = [Math.floor(u() * (SIZE - side)), Math.floor(u() * (SIZE - side))];
  for (let y = 0; y < SIZE; y++)
    for (let x = 0; x < SIZE; x++) {
      const inside = x >= x0 && x < x0 + side && y >= y0 && y < y0 + side;
      for (let c = 0; c < 3; c++) {
        const v = inside ? rgb[c] : 128 + (u() - 0.5) * 60;
        px[(y * SIZE + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v + (u() - 0.5) * 20)));
      }
    }
  return sharp(px, { raw: { width: SIZE, height: SIZE, channels: 3 } })
    .png()
    .toBuffer();
}

/** The demo's exemplar: a red square on grey, and its mask (the square). */
export async function redSquareExemplar(): Promise<{ image: Buffer; mask: Buffer }> {
  const px = Buffer.alloc(SIZE * SIZE * 3, 128);
  const mask = Buffer.alloc(SIZE * SIZE, 0);
  for (let y = 8; y < 24; y++)
    for (let x = 8; x < 24; x++) {
      px.set([230, 20, 20], (y * SIZE + x) * 3);
      mask[y * SIZE + x] = 255;
    }
  const raw = (data: Buffer, channels: 1 | 3) =>
    sharp(data, { raw: { width: SIZE, height: SIZE, channels } })
      .png()
      .toBuffer();
  return { image: await raw(px, 3), mask: await raw(mask, 1) };
}
