import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { before, describe, it } from 'node:test';
import sharp from 'sharp';
import { batches } from '../src/data/batches.ts';
import { openDataset } from '../src/data/dataset.ts';
import { decodeImage, readRgb } from '../src/data/image.ts';
import {
  cropBox,
  loadPreprocess,
  parsePreprocess,
  type PreprocessSpec,
} from '../src/data/preprocess.ts';

const shared = resolve(import.meta.dirname, '../../shared');
const spec = (over: Record<string, unknown> = {}): PreprocessSpec =>
  parsePreprocess({ size: 8, mean: [0.5, 0.5, 0.5], std: [0.5, 0.25, 0.5], ...over }, 'test.json');

const solid = (w: number, h: number, rgb: number[], fmt: 'png' | 'jpeg' | 'webp' = 'png') =>
  sharp({
    create: { width: w, height: h, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } },
  })
    [fmt]({ ...(fmt === 'webp' ? { lossless: true } : {}) })
    .toBuffer();

/** A horizontal ramp: pixel value = x, every channel. */
async function ramp(w: number, h: number): Promise<Buffer> {
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) px.fill(x, (y * w + x) * 3, (y * w + x) * 3 + 3);
  return sharp(px, { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toBuffer();
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ruledit-data-'));
});

describe('preprocessing spec', () => {
  it('reads the shared format with defaults and resolves labels next to the file', async () => {
    const file = join(dir, 'pre.json');
    await writeFile(
      file,
      JSON.stringify({ size: [10, 12], crop_fraction: 0.5, labels: 'names.txt' }),
    );
    const s = await loadPreprocess(file);
    assert.deepEqual(s.size, [10, 12]);
    assert.equal(s.layout, 'NCHW');
    assert.equal(s.resize, 'bilinear');
    assert.deepEqual(
      [s.mean, s.std],
      [
        [0, 0, 0],
        [1, 1, 1],
      ],
    );
    assert.equal(s.labels, join(dir, 'names.txt'));
  });

  const bad: [string, Record<string, unknown>, RegExp][] = [
    ['unknown field', { size: 8, sise: 8 }, /unknown field\(s\) sise/],
    ['size missing', {}, /'size'/],
    ['size zero', { size: 0 }, /'size'/],
    ['crop outside (0,1]', { size: 8, crop_fraction: 1.5 }, /'crop_fraction'/],
    ['a zero std', { size: 8, std: [1, 0, 1] }, /'std' must not contain 0/],
    ['mean of 2 values', { size: 8, mean: [0, 0] }, /'mean' must be a list of 3/],
    ['unknown resize', { size: 8, resize: 'area' }, /'resize' must be one of/],
    ['bad layout', { size: 8, layout: 'CHW' }, /'layout'/],
    ['labels not a string', { size: 8, labels: 3 }, /'labels' must be a string/],
  ];
  for (const [what, json, message] of bad) {
    it(`rejects ${what}`, () =>
      assert.throws(() => parsePreprocess(json, 'p.json'), { code: 'bad-preprocess', message }));
  }

  it('gives typed errors for a missing or non-JSON file', async () => {
    await assert.rejects(loadPreprocess(join(dir, 'none.json')), { code: 'not-found' });
    await writeFile(join(dir, 'broken.json'), '{ size: 8');
    await assert.rejects(loadPreprocess(join(dir, 'broken.json')), { code: 'bad-preprocess' });
  });

  it('crops the centre of the short side with the target aspect ratio', () => {
    const sq = { size: [224, 224] as [number, number], cropFraction: 0.875 };
    assert.deepEqual(cropBox(300, 256, sq), { left: 38, top: 16, width: 224, height: 224 });
    assert.deepEqual(cropBox(256, 300, sq), { left: 16, top: 38, width: 224, height: 224 });
    // A 2:1 target from a 400x200 image at fraction 1: short side 200, long side 400.
    assert.deepEqual(cropBox(400, 200, { size: [10, 20], cropFraction: 1 }), {
      left: 0,
      top: 0,
      width: 400,
      height: 200,
    });
    // The same target from a 300x200 image cannot be 400 wide: shrunk as a whole.
    assert.deepEqual(cropBox(300, 200, { size: [10, 20], cropFraction: 1 }), {
      left: 0,
      top: 25,
      width: 300,
      height: 150,
    });
  });
});

describe('image decoding', () => {
  it('normalizes a solid colour exactly, in both layouts and from PNG, JPEG and WebP', async () => {
    const rgb = [200, 30, 90];
    for (const fmt of ['png', 'webp', 'jpeg'] as const) {
      const buf = await solid(20, 16, rgb, fmt);
      for (const layout of ['NCHW', 'NHWC']) {
        const s = spec({ layout });
        const x = await decodeImage(buf, s);
        assert.equal(x.length, 3 * 64);
        for (let i = 0; i < x.length; i++) {
          const c = layout === 'NCHW' ? Math.floor(i / 64) : i % 3;
          const expected = (rgb[c] / 255 - s.mean[c]) / s.std[c];
          // JPEG is lossy: a solid colour may come back one level off.
          const tol = fmt === 'jpeg' ? 2.5 / 255 / s.std[c] : 1e-6;
          assert.ok(
            Math.abs(x[i] - expected) <= tol,
            `${fmt} ${layout} [${i}]: ${x[i]} vs ${expected}`,
          );
        }
      }
    }
  });

  it('takes the centre crop: a ramp keeps its middle values', async () => {
    // 100x50 ramp, crop fraction 0.5 of the short side: the 25x25 box from x = 37 to 62.
    const x = await decodeImage(
      await ramp(100, 50),
      spec({ size: 25, crop_fraction: 0.5, mean: [0, 0, 0], std: [1, 1, 1], resize: 'nearest' }),
    );
    const row = Array.from(x.subarray(0, 25), (v) => Math.round(v * 255));
    assert.deepEqual(
      row,
      Array.from({ length: 25 }, (_, i) => 38 + i),
    );
  });

  it('flattens alpha on white and applies the EXIF orientation', async () => {
    const clear = await sharp({
      create: { width: 8, height: 8, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } },
    })
      .png()
      .toBuffer();
    const x = await decodeImage(clear, spec({ mean: [0, 0, 0], std: [1, 1, 1] }));
    assert.ok(
      x.every((v) => Math.abs(v - 1) < 1e-6),
      'transparent pixels become white',
    );
    // A 40x20 image tagged 'rotate 90' is upright 20x40: the crop sees a portrait image.
    const tagged = await sharp(await ramp(40, 20))
      .withMetadata({ orientation: 6 })
      .jpeg({ quality: 100 })
      .toBuffer();
    const img = await readRgb(tagged);
    assert.deepEqual([img.width, img.height], [20, 40]);
  });

  it('gives typed errors for a missing, corrupt or truncated image', async () => {
    await assert.rejects(decodeImage(join(dir, 'none.png'), spec()), { code: 'not-found' });
    await writeFile(join(dir, 'text.png'), 'not an image');
    await assert.rejects(decodeImage(join(dir, 'text.png'), spec()), {
      code: 'bad-image',
      message: /text\.png/,
    });
    const jpeg = await sharp(await ramp(200, 200))
      .jpeg()
      .toBuffer();
    await writeFile(join(dir, 'cut.jpg'), jpeg.subarray(0, jpeg.length >> 1));
    await assert.rejects(decodeImage(join(dir, 'cut.jpg'), spec()), {
      code: 'bad-image',
      message: /cut\.jpg/,
    });
  });
});

describe('data sets', () => {
  let root: string;
  before(async () => {
    root = join(dir, 'sets');
    for (const [folder, files] of [
      ['folders/cat', ['b.png', 'a.jpg']],
      ['folders/dog', ['c.webp']],
      ['numbered/7', ['x.png']],
      ['numbered/12', ['y.png']],
      ['flat', ['p.png', 'q.PNG']],
    ] as const) {
      await mkdir(join(root, folder), { recursive: true });
      for (const f of files) await writeFile(join(root, folder, f), await solid(4, 4, [1, 2, 3]));
    }
    await writeFile(join(root, 'flat', 'notes.md'), 'not an image');
    await writeFile(
      join(root, 'flat', 'labels.csv'.replace('labels', 'manifest')),
      'file,class,name\r\np.png,3,"wolf, grey"\r\nq.PNG,1,\r\n',
    );
    await writeFile(join(root, 'list.txt'), '# two images\nflat/p.png\n\nflat/q.PNG\n');
  });

  it('reads class folders (named and numbered), a CSV manifest, a folder of images and a list', async () => {
    const named = await openDataset(join(root, 'folders'));
    assert.deepEqual(
      named.items.map((i) => [i.file.slice(root.length), i.label]),
      [
        ['/folders/cat/a.jpg', 0],
        ['/folders/cat/b.png', 0],
        ['/folders/dog/c.webp', 1],
      ],
    );
    assert.deepEqual(
      [...named.classNames!],
      [
        [0, 'cat'],
        [1, 'dog'],
      ],
    );
    const numbered = await openDataset(join(root, 'numbered'));
    assert.deepEqual(
      numbered.items.map((i) => i.label),
      [7, 12],
    );
    const csv = await openDataset(join(root, 'flat', 'manifest.csv'));
    assert.deepEqual(
      csv.items.map((i) => [i.file, i.label, i.name]),
      [
        [join(root, 'flat/p.png'), 3, 'wolf, grey'],
        [join(root, 'flat/q.PNG'), 1, undefined],
      ],
    );
    const flat = await openDataset(join(root, 'flat'));
    assert.deepEqual(
      flat.items.map((i) => [i.file.slice(root.length), i.label]),
      [
        ['/flat/p.png', undefined],
        ['/flat/q.PNG', undefined],
      ],
    );
    const list = await openDataset(join(root, 'list.txt'));
    assert.deepEqual(
      list.items.map((i) => i.file),
      [join(root, 'flat/p.png'), join(root, 'flat/q.PNG')],
    );
  });

  it('uses labels.csv inside a folder and reports bad rows with their line', async () => {
    const d = join(root, 'withcsv');
    await mkdir(d, { recursive: true });
    await writeFile(join(d, 'labels.csv'), 'file,class\na.png,0\nb.png,two\n');
    await assert.rejects(openDataset(d), {
      code: 'bad-dataset',
      message: /labels\.csv line 3: class must be a whole number/,
    });
    await writeFile(join(d, 'labels.csv'), 'path,label\na.png,0\n');
    await assert.rejects(openDataset(d), { code: 'bad-dataset', message: /header/ });
    await assert.rejects(openDataset(join(root, 'nowhere')), { code: 'not-found' });
    await mkdir(join(root, 'empty'), { recursive: true });
    await assert.rejects(openDataset(join(root, 'empty')), {
      code: 'bad-dataset',
      message: /no images/,
    });
  });
});

describe('batches', () => {
  it('yields every image in order, with a smaller last batch, and skips bad images when asked', async () => {
    const files: { file: string; id: number }[] = [];
    for (let i = 0; i < 7; i++) {
      const file = join(dir, `b${i}.png`);
      await writeFile(file, await solid(6, 6, [i * 30, 0, 0]));
      files.push({ file, id: i });
    }
    const s = spec({ size: 4, mean: [0, 0, 0], std: [1, 1, 1] });
    const got = [];
    for await (const b of batches(files, s, { batchSize: 3 })) got.push(b);
    assert.deepEqual(
      got.map((b) => b.dims),
      [
        [3, 3, 4, 4],
        [3, 3, 4, 4],
        [1, 3, 4, 4],
      ],
    );
    assert.deepEqual(
      got.flatMap((b) => b.items.map((i) => i.id)),
      [0, 1, 2, 3, 4, 5, 6],
    );
    // Image i is red = 30 i: the first value of each image's block.
    const reds = got.flatMap((b) => b.items.map((_, k) => Math.round(b.data[k * 48] * 255)));
    assert.deepEqual(reds, [0, 30, 60, 90, 120, 150, 180]);

    await writeFile(join(dir, 'bad.png'), 'garbage');
    const withBad = [...files.slice(0, 2), { file: join(dir, 'bad.png'), id: 99 }];
    await assert.rejects(
      async () => {
        for await (const _ of batches(withBad, s, { batchSize: 2 }));
      },
      { code: 'bad-image' },
    );
    const kept = [];
    for await (const b of batches(withBad, s, { batchSize: 2, onError: 'skip' }))
      kept.push(...b.items.map((i) => i.id));
    assert.deepEqual(kept, [0, 1]);
  });

  it('decodes the next `prefetch` batches while the consumer holds one, and no more', async () => {
    const files = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const file = join(dir, `ahead${i}.png`);
        await writeFile(file, await solid(6, 6, [0, i, 0]));
        return { file };
      }),
    );
    const stream = batches(files, spec({ size: 4 }), { batchSize: 2, prefetch: 2 });
    await stream.next();
    await new Promise((r) => setTimeout(r, 300));
    // Batches 2 and 3 were read while we held batch 1; batch 4 must not have been.
    await Promise.all(files.slice(2).map((f) => rm(f.file)));
    assert.equal((await stream.next()).value?.items.length, 2);
    assert.equal((await stream.next()).value?.items.length, 2);
    await assert.rejects(stream.next(), { code: 'not-found' });
  });
});

describe(
  '../shared photos',
  { skip: !existsSync(shared) && '../shared absent: real-photo check skipped' },
  () => {
    it('decodes an ImageNet photo with the shared spec to 3x224x224 in [-1, 1]', async () => {
      const s = await loadPreprocess(join(shared, 'models/mobilenetv2-imagenet/preprocess.json'));
      const csv = await readFile(join(shared, 'data/imagenet-sample/labels.csv'), 'utf8');
      const first = csv.split('\n')[1].split(',')[0];
      const x = await decodeImage(join(shared, 'data/imagenet-sample', first), s);
      assert.equal(x.length, 3 * 224 * 224);
      assert.ok(x.every((v) => v >= -1 && v <= 1));
      const [lo, hi] = x.reduce(
        ([l, h], v) => [Math.min(l, v), Math.max(h, v)],
        [Infinity, -Infinity],
      );
      assert.ok(hi - lo > 1, 'a real photo has contrast');
    });
  },
);
