import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { transformImage, type Transformation } from '../src/concepts/transform-image.ts';
import { loadStylizer } from '../src/concepts/stylize.ts';
import { textureImage } from '../src/concepts/transform.ts';
import { readRgb } from '../src/data/image.ts';
import { RuleditError } from '../src/errors.ts';
import { GraphBuilder } from '../src/onnx/build.ts';
import { serializeModel } from '../src/onnx/model.ts';
import { ruledit } from './fixtures/cli.ts';

const code = (c: string, has?: RegExp) => (e: unknown) => {
  assert.ok(e instanceof RuleditError, `expected a RuleditError, got ${String(e)}`);
  assert.equal(e.code, c, e.message);
  if (has) assert.match(e.message, has);
  return true;
};

const W = 12;
const H = 8;
/** The region: a 6x4 block at (3, 2). */
const inRegion = (x: number, y: number) => x >= 3 && x < 9 && y >= 2 && y < 6;

function noise(w: number, h: number, seed: number): Buffer {
  const px = Buffer.alloc(w * h * 3);
  let s = seed;
  for (let i = 0; i < px.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    px[i] = s >>> 24;
  }
  return px;
}
const png = (px: Buffer | Uint8Array, w: number, h: number, channels: 1 | 3 = 3) =>
  sharp(px, { raw: { width: w, height: h, channels } })
    .png()
    .toBuffer();
const maskPng = (w: number, h: number, inside: (x: number, y: number) => boolean) =>
  png(
    Uint8Array.from({ length: w * h }, (_, p) => (inside(p % w, Math.floor(p / w)) ? 255 : 0)),
    w,
    h,
    1,
  );
const rgbOf = async (bytes: Buffer) => (await readRgb(bytes)).data;

describe('transformImage: x * (1 - m) + T(x) * m at the image size', () => {
  let dir: string;
  let image: Buffer;
  let mask: Buffer;
  let original: Uint8Array;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ruledit-transform-'));
    image = await png(noise(W, H, 7), W, H);
    mask = await maskPng(W, H, inRegion);
    original = await rgbOf(image);
    await writeFile(join(dir, 'texture.png'), await png(noise(5, 3, 11), 5, 3));
    await writeFile(
      join(dir, 'style.png'),
      await sharp({ create: { width: 6, height: 6, channels: 3, background: '#1e3c5a' } })
        .png()
        .toBuffer(),
    );
    await writeFile(join(dir, 'stylize.onnx'), meanShiftModel());
  });
  after(() => rm(dir, { recursive: true, force: true }));

  /** Pixels outside the region equal the original exactly; returns how many inside changed. */
  async function check(t: Transformation, seed = 0): Promise<{ out: Uint8Array; changed: number }> {
    const out = await rgbOf(await transformImage(image, mask, t, seed));
    assert.equal(out.length, W * H * 3);
    let changed = 0;
    for (let p = 0; p < W * H; p++) {
      const [x, y] = [p % W, Math.floor(p / W)];
      const same = [0, 1, 2].every((c) => out[p * 3 + c] === original[p * 3 + c]);
      if (!inRegion(x, y)) assert.ok(same, `${t.kind}: pixel (${x},${y}) outside the mask changed`);
      else if (!same) changed++;
    }
    return { out, changed };
  }

  it('fill: exactly the colour inside, the image outside', async () => {
    const { out, changed } = await check({ kind: 'fill', colour: '#fa0' });
    assert.equal(changed, 24);
    for (let p = 0; p < W * H; p++)
      if (inRegion(p % W, Math.floor(p / W)))
        assert.deepEqual(Array.from(out.subarray(p * 3, p * 3 + 3)), [255, 170, 0]);
  });

  it('texture (stretch, tile): the texture image inside, pixel for pixel', async () => {
    for (const mode of ['stretch', 'tile'] as const) {
      const { out, changed } = await check({
        kind: 'texture',
        image: join(dir, 'texture.png'),
        mode,
      });
      assert.ok(changed >= 20, `${mode}: only ${changed} of 24 pixels changed`);
      const tex = await textureImage(join(dir, 'texture.png'), W, H, mode);
      for (let p = 0; p < W * H; p++)
        if (inRegion(p % W, Math.floor(p / W)))
          for (let c = 0; c < 3; c++) assert.equal(out[p * 3 + c], tex[p * 3 + c]);
    }
  });

  it('texture jitter: deterministic per seed, different across seeds, only inside', async () => {
    const t: Transformation = { kind: 'texture', image: join(dir, 'texture.png'), jitter: true };
    const a = (await check(t, 1)).out;
    const b = (await check(t, 1)).out;
    const c = (await check(t, 2)).out;
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    const plain = (await check({ kind: 'texture', image: join(dir, 'texture.png') }, 1)).out;
    assert.notDeepEqual(a, plain);
  });

  it('shade: the texture times the relative luminance, only inside', async () => {
    const flat = join(dir, 'flat.png');
    await writeFile(
      flat,
      await sharp({ create: { width: 3, height: 3, channels: 3, background: '#646464' } })
        .png()
        .toBuffer(),
    );
    const { out, changed } = await check({ kind: 'shade', image: flat });
    assert.ok(changed >= 20);
    const lum = (p: number) =>
      0.299 * original[p * 3] + 0.587 * original[p * 3 + 1] + 0.114 * original[p * 3 + 2];
    let sum = 0;
    for (let p = 0; p < W * H; p++) if (inRegion(p % W, Math.floor(p / W))) sum += lum(p);
    const mean = sum / 24;
    for (let p = 0; p < W * H; p++)
      if (inRegion(p % W, Math.floor(p / W)))
        assert.equal(out[p * 3], Math.round(Math.min(255, (100 * lum(p)) / mean)));
  });

  it('stylize: 0.2 * content + 0.8 * stylized inside the mask (mean-colour shift model)', async () => {
    // Content 8x4: left half (100,100,100), right half (200,50,0); mean (150,75,50). Style solid
    // (30,60,90). The model adds mean(style) - mean(content) = (-120,-15,40): left -> (0,85,140)
    // after clamping -20, right -> (80,35,40). Blended 0.2/0.8: left (20,88,132), right (104,38,32).
    const px = Buffer.alloc(8 * 4 * 3);
    for (let p = 0; p < 32; p++) px.set(p % 8 < 4 ? [100, 100, 100] : [200, 50, 0], p * 3);
    const content = await png(px, 8, 4);
    const top = await maskPng(8, 4, (_, y) => y < 2);
    const t: Transformation = {
      kind: 'stylize',
      model: join(dir, 'stylize.onnx'),
      image: join(dir, 'style.png'),
    };
    const out = await rgbOf(await transformImage(content, top, t));
    const want = (x: number, y: number) =>
      y >= 2 ? (x < 4 ? [100, 100, 100] : [200, 50, 0]) : x < 4 ? [20, 88, 132] : [104, 38, 32];
    for (let p = 0; p < 32; p++)
      assert.deepEqual(
        Array.from(out.subarray(p * 3, p * 3 + 3)),
        want(p % 8, Math.floor(p / 8)),
        `pixel ${p}`,
      );
    // Stylized alone (blend 0): (0,85,140) left, (80,35,40) right.
    const pure = await rgbOf(await transformImage(content, top, { ...t, blend: 0 }));
    assert.deepEqual(Array.from(pure.subarray(0, 3)), [0, 85, 140]);
    assert.deepEqual(Array.from(pure.subarray(7 * 3, 8 * 3)), [80, 35, 40]);
    // And the noise image: changes only inside its region.
    assert.ok((await check(t)).changed >= 20);
  });

  it('stylize: NHWC inputs by shape, content = first input when names say nothing, range 255', async () => {
    // out = min(a, 0.4): on [0,1] pixels (200,100,20) -> (0.4, 0.392, 0.078) -> (102,100,20);
    // told the model takes 0..255, the same cap leaves (0.4, 0.4, 0.4) of 255 -> black.
    const g = new GraphBuilder();
    g.input('a', [1, 'H', 'W', 3]);
    g.input('b', [1, 'H', 'W', 3]);
    g.init('cap', [1], Float32Array.from([0.4]));
    g.output(g.node('Min', ['a', 'cap']), [1, 'H', 'W', 3]);
    await writeFile(join(dir, 'cap.onnx'), serializeModel(g.build().proto));
    const content = await sharp({
      create: { width: 3, height: 2, channels: 3, background: '#c86414' },
    })
      .png()
      .toBuffer();
    const all = await maskPng(3, 2, () => true);
    const t = {
      kind: 'stylize',
      model: join(dir, 'cap.onnx'),
      image: join(dir, 'style.png'),
      blend: 0,
    } as const;
    assert.deepEqual(
      Array.from(await rgbOf(await transformImage(content, all, t))),
      new Array(6).fill([102, 100, 20]).flat(),
    );
    const out255 = await rgbOf(await transformImage(content, all, { ...t, range: 255 }));
    assert.deepEqual(Array.from(out255), new Array(18).fill(0));
  });

  it('a model that is not a two-input image model is a clear error', async () => {
    const g = new GraphBuilder();
    g.input('x', [1, 3, 2, 2]);
    g.output(g.node('Relu', ['x']), [1, 3, 2, 2]);
    await writeFile(join(dir, 'one.onnx'), serializeModel(g.build().proto));
    await assert.rejects(
      loadStylizer(join(dir, 'one.onnx')),
      code('unsupported-model', /two images/),
    );
  });

  it('masks: same aspect ratio is scaled; wrong aspect ratio and all-black masks are errors', async () => {
    // A 6x4 mask with a 2x2 block at (2,1) is the 4x4 block at (4,2) of the 12x8 image.
    const block = (x: number, y: number) => x >= 2 && x < 4 && y >= 1 && y < 3;
    const half = await maskPng(W / 2, H / 2, block);
    const full = await maskPng(W, H, (x, y) => block(Math.floor(x / 2), Math.floor(y / 2)));
    const t: Transformation = { kind: 'fill', colour: 'white' };
    const scaled = await rgbOf(await transformImage(image, half, t));
    assert.deepEqual(scaled, await rgbOf(await transformImage(image, full, t)));
    for (let p = 0; p < W * H; p++) {
      const inside = block(Math.floor((p % W) / 2), Math.floor(p / W / 2));
      if (inside) assert.deepEqual(Array.from(scaled.subarray(p * 3, p * 3 + 3)), [255, 255, 255]);
      else assert.deepEqual(scaled.subarray(p * 3, p * 3 + 3), original.subarray(p * 3, p * 3 + 3));
    }
    await assert.rejects(
      transformImage(image, await maskPng(8, 8, () => true), t),
      code('bad-mask', /8x8 but the image is 12x8/),
    );
    await assert.rejects(
      transformImage(image, await maskPng(W, H, () => false), t),
      code('bad-mask', /empty/),
    );
    await assert.rejects(
      transformImage(image, mask, { kind: 'fill', colour: 'mauve' }),
      code('bad-colour'),
    );
    await assert.rejects(
      transformImage(image, mask, { kind: 'texture', image: join(dir, 'missing.png') }),
      code('not-found'),
    );
  });

  it('the CLI writes the PNG, refuses to overwrite without --force, and wants one transformation', async () => {
    await writeFile(join(dir, 'image.png'), image);
    await writeFile(join(dir, 'mask.png'), mask);
    const out = join(dir, 'out.png');
    const args = ['transform', join(dir, 'image.png'), join(dir, 'mask.png'), '--out', out];
    const ok = await ruledit([...args, '--fill', 'black']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(
      await rgbOf(await readFile(out)),
      await rgbOf(await transformImage(image, mask, { kind: 'fill', colour: 'black' })),
    );
    const again = await ruledit([...args, '--fill', 'white']);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /ruledit: error: .*out\.png already exists; pass --force/);
    const none = await ruledit(args);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /give a transformation: --texture FILE, --fill COLOUR/);
    assert.ok(existsSync(out));
  });
});

/**
 * A stand-in for a style-transfer network: style first, content second (so names, not order,
 * must decide), style at a fixed 4x4, content at any size, values in [0, 1]:
 * out = content + mean(style) - mean(content), per channel.
 */
function meanShiftModel(): Uint8Array {
  const g = new GraphBuilder();
  g.input('style_image', [1, 3, 4, 4]);
  g.input('content_image', [1, 3, 'H', 'W']);
  const ms = g.node('ReduceMean', ['style_image'], { axes: [2, 3], keepdims: 1 });
  const mc = g.node('ReduceMean', ['content_image'], { axes: [2, 3], keepdims: 1 });
  const shift = g.node('Sub', [ms, mc]);
  const out = g.node('Add', ['content_image', shift], {}, 'stylized');
  g.output(out, [1, 3, 'H', 'W']);
  return serializeModel(g.build().proto);
}
