import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import {
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { crc32 } from 'node:zlib';
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
    ['input not a string', { size: 8, input: 1 }, /'input' must be a string/],
    ['output not a string', { size: 8, output: ['y'] }, /'output' must be a string/],
    ['size as a string', { size: '224' }, /'size'/],
    ['fractional size', { size: 2.5 }, /'size'/],
    ['negative height', { size: [-4, 8] }, /'size'/],
    ['size of 3 values', { size: [8, 8, 3] }, /'size'/],
    ['crop of 0', { size: 8, crop_fraction: 0 }, /'crop_fraction'/],
    ['crop as a string', { size: 8, crop_fraction: '0.875' }, /'crop_fraction'/],
    ['std of 4 values', { size: 8, std: [1, 1, 1, 1] }, /'std' must be a list of 3/],
    ['mean of strings', { size: 8, mean: ['0', '0', '0'] }, /'mean' must be a list of 3/],
    ['resize not a string', { size: 8, resize: 2 }, /'resize' must be one of/],
  ];
  for (const [what, json, message] of bad) {
    it(`rejects ${what}`, () =>
      assert.throws(() => parsePreprocess(json, 'p.json'), { code: 'bad-preprocess', message }));
  }

  it('reads every field, and rejects JSON that is not an object', () => {
    const s = parsePreprocess(
      {
        input: 'x',
        output: 'y',
        layout: 'NHWC',
        size: [3, 5],
        crop_fraction: 0.5,
        resize: 'lanczos3',
        mean: [0.1, 0.2, 0.3],
        std: [2, 3, 4],
        labels: '/abs/names.txt',
      },
      '/specs/p.json',
    );
    assert.deepEqual(s, {
      input: 'x',
      output: 'y',
      layout: 'NHWC',
      size: [3, 5],
      cropFraction: 0.5,
      resize: 'lanczos3',
      mean: [0.1, 0.2, 0.3],
      std: [2, 3, 4],
      labels: '/abs/names.txt',
    });
    for (const json of [null, [], 224, 'size'])
      assert.throws(() => parsePreprocess(json, 'p.json'), {
        code: 'bad-preprocess',
        message: /expected a JSON object/,
      });
  });

  it('gives typed errors for a missing or non-JSON file', async () => {
    await assert.rejects(loadPreprocess(join(dir, 'none.json')), { code: 'not-found' });
    await writeFile(join(dir, 'broken.json'), '{ size: 8');
    await assert.rejects(loadPreprocess(join(dir, 'broken.json')), { code: 'bad-preprocess' });
    await assert.rejects(loadPreprocess(dir), { code: 'not-a-file', message: /is a folder/ });
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
    // A tiny crop of a tiny image still keeps one pixel.
    assert.deepEqual(cropBox(3, 1, { size: [8, 8], cropFraction: 0.1 }), {
      left: 1,
      top: 0,
      width: 1,
      height: 1,
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

  it('resizes to a non-square [h, w] in either layout without swapping the axes', async () => {
    // A 40x20 ramp has a 2:1 target's shape: the crop is the whole image, squeezed to 10x5.
    const img = await ramp(40, 20);
    const nchw = await decodeImage(img, spec({ size: [5, 10], mean: [0, 0, 0], std: [1, 1, 1] }));
    const nhwc = await decodeImage(
      img,
      spec({ size: [5, 10], mean: [0, 0, 0], std: [1, 1, 1], layout: 'NHWC' }),
    );
    assert.equal(nchw.length, 3 * 5 * 10);
    const row = Array.from(nchw.subarray(0, 10), (v) => v * 255);
    for (let x = 1; x < 10; x++) assert.ok(row[x] > row[x - 1], `row rises left to right: ${row}`);
    assert.ok(row[0] < 4 && row[9] > 35, `row spans the ramp: ${row}`);
    for (let p = 0; p < 50; p++)
      for (let c = 0; c < 3; c++) {
        assert.equal(nhwc[p * 3 + c], nchw[c * 50 + p]);
        assert.equal(nchw[c * 50 + p], nchw[p % 10], 'rows and channels are equal');
      }
  });

  it('crops an EXIF-rotated photo upright', async () => {
    // Stored 40x20 with value = x, tagged 'rotate 90 clockwise': upright it is 20x40 with value = y.
    // Its centre 20x20 square spans y = 10..29, so output row r holds 10 + r in every column.
    const tagged = await sharp(await ramp(40, 20))
      .withMetadata({ orientation: 6 })
      .jpeg({ quality: 100 })
      .toBuffer();
    const x = await decodeImage(
      tagged,
      spec({ size: 20, mean: [0, 0, 0], std: [1, 1, 1], resize: 'nearest' }),
    );
    for (let r = 0; r < 20; r++)
      for (const c of [0, 10, 19]) {
        const v = x[r * 20 + c] * 255;
        assert.ok(Math.abs(v - (10 + r)) <= 2, `row ${r} col ${c}: ${v}`);
      }
  });

  it('turns greyscale and 16-bit images into three equal 8-bit channels', async () => {
    const grey = Buffer.alloc(6 * 6, 90);
    const raw = { raw: { width: 6, height: 6, channels: 1 as const } };
    const s = spec({ mean: [0, 0, 0], std: [1, 1, 1], layout: 'NHWC' });
    for (const img of [
      await sharp(grey, raw).toColourspace('b-w').png().toBuffer(),
      await sharp(grey, raw).toColourspace('grey16').png().toBuffer(),
    ]) {
      const x = await decodeImage(img, s);
      assert.ok(
        x.every((v) => Math.round(v * 255) === 90),
        'every channel of every pixel is 90',
      );
    }
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
    await assert.rejects(readRgb(join(dir, 'cut.jpg')), { code: 'bad-image' });
    await assert.rejects(decodeImage(dir, spec()), { code: 'not-a-file', message: /is a folder/ });
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
    await writeFile(join(root, 'set.json'), '[]');
    await assert.rejects(openDataset(join(root, 'set.json')), {
      code: 'bad-dataset',
      message: /\.csv manifest or a \.txt list/,
    });
  });

  it('reads a folder with labels.csv (BOM, quotes, CRLF) and a .txt list with comments', async () => {
    const d = join(root, 'manifested');
    await mkdir(join(d, 'imgs'), { recursive: true });
    for (const f of ['a.png', 'b,c.png'])
      await writeFile(join(d, 'imgs', f), await solid(4, 4, [9, 9, 9]));
    await writeFile(
      join(d, 'labels.csv'),
      '\uFEFFfile,class,name\r\nimgs/a.png, 5 ,five\r\n\r\n"imgs/b,c.png",0,"say ""zero"""\r\n',
    );
    const m = await openDataset(d);
    assert.equal(m.root, d);
    assert.deepEqual(
      m.items.map((i) => [i.file, i.label, i.name]),
      [
        [join(d, 'imgs/a.png'), 5, 'five'],
        [join(d, 'imgs/b,c.png'), 0, 'say "zero"'],
      ],
    );
    assert.deepEqual(
      [...m.classNames!],
      [
        [5, 'five'],
        [0, 'say "zero"'],
      ],
    );
    await writeFile(
      join(d, 'list.txt'),
      '  # heading\r\nimgs/a.png\r\n   \r\n  imgs/b,c.png  \r\n',
    );
    const list = await openDataset(join(d, 'list.txt'));
    assert.deepEqual(list.items, [
      { file: join(d, 'imgs/a.png') },
      { file: join(d, 'imgs/b,c.png') },
    ]);
  });

  it('accepts only digits as a class and needs a file in every row', async () => {
    const csv = join(root, 'strict.csv');
    for (const cls of ['3.0', '1e2', '-1', '0x1f', '']) {
      await writeFile(csv, `file,class\na.png,${cls}\n`);
      await assert.rejects(openDataset(csv), {
        code: 'bad-dataset',
        message: /strict\.csv line 2: class must be a whole number/,
      });
    }
    await writeFile(csv, 'file,class\na.png,1\n"",2\n');
    await assert.rejects(openDataset(csv), {
      code: 'bad-dataset',
      message: /strict\.csv line 3: no file name/,
    });
  });

  it('skips dot-entries, follows symlinks, and refuses a folder mixing images and sub-folders', async () => {
    const d = join(root, 'tidy');
    await mkdir(join(d, 'cat'), { recursive: true });
    await mkdir(join(d, '.ipynb_checkpoints'), { recursive: true });
    await writeFile(join(d, 'cat', 'a.png'), await solid(4, 4, [1, 1, 1]));
    await writeFile(join(d, 'cat', '._a.png'), 'macOS resource fork');
    await symlink(join(root, 'folders', 'dog'), join(d, 'dog'));
    const set = await openDataset(d);
    assert.deepEqual(
      set.items.map((i) => [i.file.slice(d.length), i.label, i.name]),
      [
        ['/cat/a.png', 0, 'cat'],
        ['/dog/c.webp', 1, 'dog'],
      ],
    );
    await writeFile(join(d, 'stray.jpg'), await solid(4, 4, [1, 1, 1], 'jpeg'));
    await assert.rejects(openDataset(d), {
      code: 'bad-dataset',
      message: /both images and sub-folders/,
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
    const warnings: string[] = [];
    for await (const b of batches(withBad, s, { batchSize: 2, onSkip: (w) => warnings.push(w) }))
      kept.push(...b.items.map((i) => i.id));
    assert.deepEqual(kept, [0, 1]);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /bad\.png/);
  });

  it('with prefetch 0 decodes only on demand, and NHWC batches are [n, h, w, 3]', async () => {
    const files = await Promise.all(
      Array.from({ length: 5 }, async (_, i) => {
        const file = join(dir, `lazy${i}.png`);
        await writeFile(file, await solid(6, 6, [0, 0, i]));
        return { file };
      }),
    );
    const s = spec({ size: 4, layout: 'NHWC' });
    const stream = batches(files, s, { batchSize: 2, prefetch: 0 });
    assert.deepEqual((await stream.next()).value?.dims, [2, 4, 4, 3]);
    await new Promise((r) => setTimeout(r, 100));
    // Nothing was read ahead, so the second batch finds its first file gone.
    await rm(files[2].file);
    await assert.rejects(stream.next(), { code: 'not-found' });
    await assert.rejects(batches(files, s, { batchSize: 0 }).next(), RangeError);
  });

  it('leaves no unhandled rejection when the consumer stops early', async () => {
    await writeFile(join(dir, 'junk.png'), 'garbage');
    await writeFile(join(dir, 'fine.png'), await solid(6, 6, [1, 2, 3]));
    const items = ['fine', 'junk', 'junk', 'junk'].map((f) => ({ file: join(dir, `${f}.png`) }));
    const unhandled: unknown[] = [];
    const note = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', note);
    try {
      for await (const b of batches(items, spec({ size: 4 }), { batchSize: 1, prefetch: 3 })) {
        assert.equal(b.items.length, 1);
        break;
      }
      // The three prefetched batches of junk fail after the loop is gone.
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', note);
    }
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

describe('pixel cache', () => {
  it('reads back the same normalized pixels, replaces a damaged entry, and keys on the file and spec', async () => {
    const cache = join(dir, 'pixel-cache');
    const file = join(dir, 'pc.jpg');
    await writeFile(file, await ramp(40, 30).then((b) => sharp(b).jpeg().toBuffer()));
    const s = spec({ size: 16 });
    const plain = await decodeImage(file, s);
    const entries = async () =>
      (await readdir(join(cache, 'pixels'), { recursive: true, withFileTypes: true }))
        .filter((e) => e.isFile())
        .map((e) => join(e.parentPath, e.name));
    assert.deepEqual(await decodeImage(file, s, { pixelCache: cache }), plain); // decoded, kept
    const [entry] = await entries();
    assert.equal((await readFile(entry)).length, 16 * 16 * 3 + 4);
    // Read back: the file itself is no longer decoded (its pixels in the entry are what counts).
    const kept = await readFile(entry);
    kept[0] ^= 0xff;
    kept.writeUInt32LE(crc32(kept.subarray(0, 16 * 16 * 3)), 16 * 16 * 3);
    await writeFile(entry, kept);
    assert.notDeepEqual(await decodeImage(file, s, { pixelCache: cache }), plain);
    // A damaged entry (its CRC no longer matches) is decoded again and replaced.
    kept[1] ^= 0xff;
    await writeFile(entry, kept);
    assert.deepEqual(await decodeImage(file, s, { pixelCache: cache }), plain);
    assert.deepEqual(await decodeImage(file, s, { pixelCache: cache }), plain);
    // Another size, or the file rewritten, is another entry.
    await decodeImage(file, spec({ size: 8 }), { pixelCache: cache });
    await writeFile(file, await solid(40, 30, [9, 9, 9], 'jpeg'));
    await utimes(file, new Date(), new Date(Date.now() + 5000));
    assert.deepEqual(await decodeImage(file, s, { pixelCache: cache }), await decodeImage(file, s));
    assert.equal((await entries()).length, 3);
    // What cannot be read says so as without the cache.
    await assert.rejects(decodeImage(join(dir, 'none.png'), s, { pixelCache: cache }), {
      code: 'not-found',
    });
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
