import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { loadExemplar, loadExemplars } from '../src/concepts/exemplar.ts';
import {
  compose,
  fillTexture,
  parseColour,
  shadeTexture,
  textureImage,
} from '../src/concepts/transform.ts';
import { decodeImage } from '../src/data/image.ts';
import { areaResize, loadMask } from '../src/data/mask.ts';
import { loadPreprocess, parsePreprocess, type PreprocessSpec } from '../src/data/preprocess.ts';
import { RuleditError } from '../src/errors.ts';

const shared = resolve(import.meta.dirname, '../../shared');
const spec = (over: Record<string, unknown> = {}): PreprocessSpec =>
  parsePreprocess(
    { size: 8, crop_fraction: 1, mean: [0.5, 0.4, 0.3], std: [0.5, 0.25, 0.2], ...over },
    'test.json',
  );

const code = (c: string) => (e: unknown) => {
  assert.ok(e instanceof RuleditError, `expected a RuleditError, got ${String(e)}`);
  assert.equal(e.code, c, e.message);
  return true;
};

/** Deterministic RGB noise as PNG. */
function noise(w: number, h: number, seed = 1): Promise<Buffer> {
  const px = Buffer.alloc(w * h * 3);
  let s = seed;
  for (let i = 0; i < px.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    px[i] = s >>> 24;
  }
  return sharp(px, { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toBuffer();
}

/** A grey mask, 255 where inside(x, y). */
function maskPng(w: number, h: number, inside: (x: number, y: number) => boolean): Promise<Buffer> {
  const px = Buffer.alloc(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) px[y * w + x] = inside(x, y) ? 255 : 0;
  return sharp(px, { raw: { width: w, height: h, channels: 1 } })
    .png()
    .toBuffer();
}

const solid = (w: number, h: number, rgb: number[]) =>
  sharp({
    create: { width: w, height: h, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } },
  })
    .png()
    .toBuffer();

const mean = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v, 0) / a.length;
const close = (a: number, b: number, tol = 1e-6, what = '') =>
  assert.ok(Math.abs(a - b) <= tol, `${what} ${a} != ${b}`);

describe('areaResize', () => {
  it('4x4 -> 2x2 averages 2x2 blocks', () => {
    const m = Float32Array.from({ length: 16 }, (_, i) => i + 1);
    assert.deepEqual(Array.from(areaResize(m, 4, 4, 2, 2)), [3.5, 5.5, 11.5, 13.5]);
  });
  it('6x6 -> 4x4 weighs cut pixels by the covered fraction and keeps the mean', () => {
    const ramp = Float32Array.from({ length: 36 }, (_, i) => i % 6);
    const out = areaResize(ramp, 6, 6, 4, 4);
    const want = [1 / 3, 5 / 3, 10 / 3, 14 / 3];
    for (let y = 0; y < 4; y++)
      for (let x = 0; x < 4; x++) close(out[y * 4 + x], want[x], 1e-6, `(${x},${y})`);
    close(mean(out), mean(ramp), 1e-6, 'mean');
    const dot = new Float32Array(36);
    dot[1 * 6 + 1] = 1; // pixel (1,1): a quarter of it lies in cell (0,0), which has area 2.25
    const d = areaResize(dot, 6, 6, 4, 4);
    close(d[0], 0.25 / 2.25);
    close(d[1], 0.25 / 2.25);
    close(d[5], 0.25 / 2.25);
    close(mean(d), 1 / 36);
  });
  it('224x224 -> 7x7 of a random mask keeps the mean', () => {
    const m = Float32Array.from({ length: 224 * 224 }, (_, i) => ((i * 7919) % 101) / 100);
    close(mean(areaResize(m, 224, 224, 7, 7)), mean(m), 1e-5);
  });
});

describe('loadMask', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ruledit-mask-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('a right-half mask: 0 on the left columns, 1 on the right, mean 0.5', async () => {
    const m = await loadMask(await maskPng(40, 40, (x) => x >= 20), 40, 40, spec());
    assert.equal(m.length, 64);
    for (let y = 0; y < 8; y++)
      for (let x = 0; x < 8; x++) assert.equal(m[y * 8 + x], x < 4 ? 0 : 1, `(${x},${y})`);
    assert.equal(mean(m), 0.5);
  });
  it('edge cells get fractions when the boundary cuts them', async () => {
    // 40 px -> 8 cells of 5 px; boundary at x = 22 cuts cell 4 at 2/5.
    const m = await loadMask(await maskPng(40, 40, (x) => x >= 22), 40, 40, spec());
    close(m[4], 3 / 5);
    assert.equal(m[3], 0);
    assert.equal(m[5], 1);
  });
  it('a mask with the same aspect ratio is scaled to the image', async () => {
    const half = await loadMask(await maskPng(20, 10, (x) => x >= 10), 40, 20, spec());
    const full = await loadMask(await maskPng(40, 20, (x) => x >= 20), 40, 20, spec());
    assert.deepEqual(half, full);
  });
  it('is cropped like the image', async () => {
    // crop_fraction 0.5 of a 40x40 image: box 20x20 at 10,10; the mask is x >= 20 (the right half).
    const m = await loadMask(
      await maskPng(40, 40, (x) => x >= 20),
      40,
      40,
      spec({ crop_fraction: 0.5 }),
    );
    assert.equal(mean(m), 0.5);
    assert.equal(m[3], 0);
    assert.equal(m[4], 1);
  });
  it('rejects another aspect ratio, naming both sizes', async () => {
    await assert.rejects(
      loadMask(await maskPng(20, 30, () => true), 40, 40, spec()),
      (e: unknown) =>
        code('bad-mask')(e) &&
        /20x30/.test((e as Error).message) &&
        /40x40/.test((e as Error).message),
    );
  });
  it('rejects an empty mask, and one empty inside the crop', async () => {
    await assert.rejects(
      loadMask(await maskPng(40, 40, () => false), 40, 40, spec()),
      code('bad-mask'),
    );
    await assert.rejects(
      loadMask(
        await maskPng(40, 40, (x, y) => x < 5 && y < 5),
        40,
        40,
        spec({ crop_fraction: 0.5 }),
      ),
      (e: unknown) => code('bad-mask')(e) && /crop/.test((e as Error).message),
    );
  });
  it('rejects a missing or undecodable mask', async () => {
    await assert.rejects(loadMask(join(dir, 'nope.png'), 40, 40, spec()), code('not-found'));
    const junk = join(dir, 'junk.png');
    await writeFile(junk, 'not an image');
    await assert.rejects(loadMask(junk, 40, 40, spec()), code('bad-mask'));
  });
  it('flattens alpha on black: transparent is out', async () => {
    const px = Buffer.alloc(40 * 40 * 4);
    for (let p = 0; p < 1600; p++) {
      px.fill(255, p * 4, p * 4 + 3);
      px[p * 4 + 3] = p % 40 >= 20 ? 255 : 0;
    }
    const png = await sharp(px, { raw: { width: 40, height: 40, channels: 4 } })
      .png()
      .toBuffer();
    assert.equal(mean(await loadMask(png, 40, 40, spec())), 0.5);
  });
});

describe('transform', () => {
  it('parseColour', () => {
    assert.deepEqual(parseColour('white'), [255, 255, 255]);
    assert.deepEqual(parseColour(' Gray '), [128, 128, 128]);
    assert.deepEqual(parseColour('grey'), [128, 128, 128]);
    assert.deepEqual(parseColour('black'), [0, 0, 0]);
    assert.deepEqual(parseColour('#FF8000'), [255, 128, 0]);
    assert.deepEqual(parseColour('#0f0'), [0, 255, 0]);
    assert.throws(() => parseColour('purple'), code('bad-colour'));
    assert.throws(() => parseColour('#12345'), code('bad-colour'));
  });
  it('compose blends inside a soft mask', () => {
    const x = fillTexture([0, 100, 200], 2, 1);
    const t = fillTexture([255, 0, 0], 2, 1);
    const out = compose(x, t, Float32Array.from([0, 0.5]));
    assert.deepEqual(Array.from(out), [0, 100, 200, 127.5, 50, 100]);
  });
  it('tile repeats the texture from the top-left at half the short side', async () => {
    const px = Buffer.from(Array.from({ length: 48 }, (_, i) => i * 5));
    const tex = await sharp(px, { raw: { width: 4, height: 4, channels: 3 } })
      .png()
      .toBuffer();
    const t = await textureImage(tex, 8, 12, 'tile');
    for (let y = 0; y < 12; y++)
      for (let x = 0; x < 8; x++)
        for (let c = 0; c < 3; c++)
          assert.equal(t[(y * 8 + x) * 3 + c], px[((y % 4) * 4 + (x % 4)) * 3 + c]);
  });
});

describe('loadExemplar', () => {
  let dir: string;
  const p = (n: string) => join(dir, n);
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ruledit-exemplar-'));
    await writeFile(p('image.png'), await noise(48, 40));
    await writeFile(p('mask.png'), await maskPng(48, 40, (x) => x >= 24));
    await writeFile(p('texture.png'), await solid(10, 6, [200, 30, 60]));
    await writeFile(p('other.png'), await noise(40, 40, 7));
    await writeFile(p('modified.png'), await noise(48, 40, 9));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  for (const layout of ['NCHW', 'NHWC'] as const)
    it(`fill white (${layout}): x is decodeImage's output, x' is white inside the mask only`, async () => {
      const s = spec({ layout, size: [8, 12] });
      const ex = await loadExemplar(p('image.png'), p('mask.png'), { fill: 'white' }, s);
      const ref = await decodeImage(p('image.png'), s);
      assert.deepEqual(ex.size, [8, 12]);
      assert.equal(ex.original.length, ref.length);
      for (let i = 0; i < ref.length; i++) close(ex.original[i], ref[i], 1e-6, `x[${i}]`);
      const hw = 96;
      for (let pix = 0; pix < hw; pix++)
        for (let c = 0; c < 3; c++) {
          const i = layout === 'NCHW' ? c * hw + pix : pix * 3 + c;
          if (ex.mask[pix] === 0) assert.equal(ex.transformed[i], ref[i]);
          else {
            assert.equal(ex.mask[pix], 1);
            close(ex.transformed[i], (1 - s.mean[c]) / s.std[c], 1e-6, `x'[${i}]`);
          }
        }
      close(mean(ex.mask), 0.5);
      assert.match(ex.hashes.image, /^[0-9a-f]{64}$/);
      assert.notEqual(ex.hashes.image, ex.hashes.mask);
    });

  for (const mode of ['stretch', 'tile'] as const)
    it(`texture ${mode} puts the texture's colour inside the mask`, async () => {
      const s = spec({ size: [8, 12] });
      const ex = await loadExemplar(
        p('image.png'),
        p('mask.png'),
        { texture: p('texture.png'), mode },
        s,
      );
      const hw = 96;
      const rgb = [200, 30, 60];
      let inside = 0;
      for (let pix = 0; pix < hw; pix++)
        if (ex.mask[pix] === 1) {
          inside++;
          for (let c = 0; c < 3; c++)
            close(ex.transformed[c * hw + pix], (rgb[c] / 255 - s.mean[c]) / s.std[c], 1e-5);
        } else if (ex.mask[pix] === 0)
          for (let c = 0; c < 3; c++)
            assert.equal(ex.transformed[c * hw + pix], ex.original[c * hw + pix]);
      assert.equal(inside, 48);
    });

  it('a style gives one exemplar per image and placement; placement 0 is the plain texture', async () => {
    const s = spec({ size: [8, 12] });
    const style = p('style');
    await mkdir(style, { recursive: true });
    await writeFile(join(style, 'a.png'), await noise(16, 16, 3));
    await writeFile(join(style, 'b.png'), await noise(16, 16, 4));
    const all = await loadExemplars(p('image.png'), p('mask.png'), { style, variants: 3 }, s);
    assert.equal(all.length, 6);
    for (const ex of all) assert.deepEqual(ex.original, all[0].original);
    assert.equal(new Set(all.map((e) => e.hashes.replacement)).size, 6);
    const changed = (a: Float32Array, b: Float32Array) => a.some((v, i) => v !== b[i]);
    assert.ok(changed(all[0].transformed, all[1].transformed), 'a jittered placement differs');
    assert.ok(changed(all[0].transformed, all[3].transformed), 'the second image differs');
    const plain = await loadExemplar(
      p('image.png'),
      p('mask.png'),
      { texture: join(style, 'b.png') },
      s,
    );
    assert.deepEqual(all[3].transformed, plain.transformed);
    // Outside the mask every variant is x.
    for (const ex of all)
      for (let pix = 0; pix < 96; pix++)
        if (ex.mask[pix] === 0)
          for (let c = 0; c < 3; c++)
            assert.equal(ex.transformed[c * 96 + pix], ex.original[c * 96 + pix]);
    await assert.rejects(loadExemplar(p('image.png'), p('mask.png'), { style }, s), {
      code: 'bad-exemplar',
    });
  });

  it("modified: x' is the modified image as decodeImage gives it; another size is refused", async () => {
    const s = spec();
    const ex = await loadExemplar(
      p('image.png'),
      p('mask.png'),
      { modified: p('modified.png') },
      s,
    );
    assert.deepEqual(ex.transformed, await decodeImage(p('modified.png'), s));
    await assert.rejects(
      loadExemplar(p('image.png'), p('mask.png'), { modified: p('other.png') }, s),
      (e: unknown) =>
        code('bad-exemplar')(e) &&
        /40x40/.test((e as Error).message) &&
        /48x40/.test((e as Error).message),
    );
  });

  it('hashes: fill string, texture bytes; missing files are not-found', async () => {
    const a = await loadExemplar(p('image.png'), p('mask.png'), { fill: 'white' }, spec());
    const b = await loadExemplar(p('image.png'), p('mask.png'), { fill: '#fff' }, spec());
    assert.equal(a.hashes.image, b.hashes.image);
    assert.notEqual(a.hashes.replacement, b.hashes.replacement);
    await assert.rejects(
      loadExemplar(p('nope.png'), p('mask.png'), { fill: 'white' }, spec()),
      code('not-found'),
    );
    await assert.rejects(
      loadExemplar(p('image.png'), p('mask.png'), { texture: p('nope.png') }, spec()),
      code('not-found'),
    );
    await assert.rejects(
      loadExemplar(p('image.png'), p('mask.png'), { fill: 'purple' }, spec()),
      code('bad-colour'),
    );
  });

  it(
    'the shared street-road exemplar with the snow texture',
    { skip: !existsSync(shared) && '../shared absent: no real exemplar to load' },
    async () => {
      const ex = join(shared, 'data/exemplars');
      const s = await loadPreprocess(join(shared, 'models/mobilenetv2-imagenet/preprocess.json'));
      const e = await loadExemplar(
        join(ex, 'street-road/image.png'),
        join(ex, 'street-road/road_mask.png'),
        { texture: join(ex, 'snow_texture.jpg') },
        s,
      );
      const [h, w] = s.size;
      const hw = h * w;
      assert.equal(e.mask.length, hw);
      const mm = mean(e.mask);
      assert.ok(mm > 0.05 && mm < 0.9, `mask mean ${mm}`);
      const ref = await decodeImage(join(ex, 'street-road/image.png'), s);
      for (let i = 0; i < ref.length; i++) close(e.original[i], ref[i], 1e-6);
      let changed = 0;
      for (let pix = 0; pix < hw; pix++)
        for (let c = 0; c < 3; c++) {
          const i = c * hw + pix;
          if (e.mask[pix] === 0) assert.equal(e.transformed[i], e.original[i]);
          else if (e.transformed[i] !== e.original[i]) changed++;
        }
      assert.ok(changed > 0.5 * 3 * mm * hw, `only ${changed} values changed`);
    },
  );
});

describe('shaded texture transfer', () => {
  it('keeps the texture on an evenly lit region and follows the shading of a ramp', () => {
    const n = 4;
    const texture = new Float32Array(n * 3).fill(100);
    const mask = new Float32Array(n).fill(1);
    const even = new Float32Array(n * 3).fill(80);
    assert.deepEqual(shadeTexture(even, texture, mask), texture);
    // Grey levels 40, 80, 120, 160 (mean 100): the texture scales by 0.4, 0.8, 1.2, 1.6.
    const ramp = Float32Array.from({ length: n * 3 }, (_, i) => 40 * (Math.floor(i / 3) + 1));
    const shaded = shadeTexture(ramp, texture, mask);
    assert.deepEqual(
      Array.from(
        shaded.filter((_, i) => i % 3 === 0),
        (v) => Math.round(v),
      ),
      [40, 80, 120, 160],
    );
    // Only the masked region sets the mean; values stay within 8-bit range.
    const half = Float32Array.from([1, 1, 0, 0]);
    const bright = Float32Array.from({ length: n * 3 }, (_, i) => (i < 6 ? 50 : 250));
    const out = shadeTexture(bright, new Float32Array(n * 3).fill(200), half);
    assert.equal(Math.round(out[0]), 200);
    assert.equal(out[9], 255);
  });
});
