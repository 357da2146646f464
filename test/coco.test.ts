import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { buildConceptIndex } from '../src/concepts/concept-index.ts';
import {
  categoryIds,
  decodeRle,
  parseCoco,
  polygonRle,
  rleFromString,
  rleToString,
  segmentationMask,
} from '../src/data/coco.ts';
import { RuleditError } from '../src/errors.ts';

const code = (c: string, has?: RegExp) => (e: unknown) => {
  assert.ok(e instanceof RuleditError, `expected a RuleditError, got ${String(e)}`);
  assert.equal(e.code, c, e.message);
  if (has) assert.match(e.message, has);
  return true;
};

/** Rows of '#' (inside) and '.' as a row-major 0/1 mask. */
const rows = (...r: string[]) => Uint8Array.from(r.join(''), (ch) => (ch === '#' ? 1 : 0));
const show = (m: Uint8Array, w: number) =>
  Array.from({ length: m.length / w }, (_, y) =>
    Array.from(m.subarray(y * w, (y + 1) * w), (v) => (v ? '#' : '.')).join(''),
  );
const polygon = (xy: number[], h: number, w: number) => decodeRle(polygonRle(xy, h, w), h, w);

describe('COCO polygons (pycocotools rleFrPoly semantics: pixel centres, even-odd)', () => {
  it('an axis-aligned square [1,4]x[1,4] covers the 3x3 pixels whose centres lie inside', () => {
    const m = polygon([1, 1, 4, 1, 4, 4, 1, 4], 6, 6);
    const want = rows('......', '.###..', '.###..', '.###..', '......', '......');
    assert.deepEqual(show(m, 6), show(want, 6));
  });

  it('a right triangle with legs 6.5: exactly the pixels with x + y <= 5', () => {
    const m = polygon([0, 0, 6.5, 0, 0, 6.5], 7, 7);
    const want = rows('######.', '#####..', '####...', '###....', '##.....', '#......', '.......');
    assert.deepEqual(show(m, 7), show(want, 7));
  });

  it('a non-square image keeps x as column and y as row (COCO runs go down columns)', () => {
    // Wide rectangle x in [2,6], y in [1,3] on a 4-row, 7-column image; clockwise order.
    const m = polygon([2, 1, 2, 3, 6, 3, 6, 1], 4, 7);
    assert.deepEqual(show(m, 7), show(rows('.......', '..####.', '..####.', '.......'), 7));
  });

  it('a self-crossing outline is filled even-odd, and an object of two polygons is their union', () => {
    // A square traced twice in one polygon: even-odd leaves it empty.
    assert.equal(
      polygon([1, 1, 4, 1, 4, 4, 1, 4, 1, 1, 4, 1, 4, 4, 1, 4], 6, 6).reduce((a, b) => a + b),
      0,
    );
    const two = segmentationMask(
      [
        [0, 0, 2, 0, 2, 2, 0, 2],
        [3, 3, 5, 3, 5, 5, 3, 5],
      ],
      5,
      5,
    );
    assert.deepEqual(show(two, 5), show(rows('##...', '##...', '.....', '...##', '...##'), 5));
  });

  it('vertices outside the image are clipped, and fewer than 3 points enclose nothing', () => {
    const m = polygon([-2, -2, 3, -2, 3, 2, -2, 2], 4, 4);
    assert.deepEqual(show(m, 4), show(rows('###.', '###.', '....', '....'), 4));
    assert.deepEqual(polygonRle([1, 1, 3, 3], 4, 4), [16]);
  });
});

describe('COCO RLE', () => {
  it('uncompressed counts decode column-major, starting with a run of zeros', () => {
    // Columns of a 3x4 image: [0,1,1] [0,0,0] [1,1,1] [1,0,0].
    const m = segmentationMask({ counts: [1, 2, 3, 4, 2], size: [3, 4] }, 3, 4);
    assert.deepEqual(show(m, 4), ['..##', '#.#.', '#.#.']);
  });

  it('compressed strings encoded by hand with the COCO algorithm decode to their counts', () => {
    // [3,2,5,4,1]: '3','2','5'; from the 4th on the difference to two before: 4-2=2 -> '2',
    // 1-5=-4 -> 5 bits 11100 (28, sign bit set, no continuation) -> 28+48 = 'L'.
    assert.deepEqual(rleFromString('3252L'), [3, 2, 5, 4, 1]);
    // [12,40,3,5]: 12 -> '<'; 40 = 8 + 1*32 -> (8|0x20)+48 = 'X', 1+48 = '1'; 3 -> '3';
    // 5-40 = -35 -> low 5 bits 29 with continuation (29|32)+48 = 'm', then -2 -> 30+48 = 'N'.
    assert.deepEqual(rleFromString('<X13mN'), [12, 40, 3, 5]);
    assert.equal(rleToString([12, 40, 3, 5]), '<X13mN');
    assert.equal(rleToString([3, 2, 5, 4, 1]), '3252L');
    const m = segmentationMask({ counts: '<X13mN', size: [10, 6] }, 10, 6);
    // Column-major pixels 12..51 and 55..59 are inside: column 1 from row 2, columns 2-4,
    // column 5 rows 0-1 and 5-9.
    const want = new Uint8Array(60);
    for (let k = 12; k < 60; k++)
      if (k < 52 || k >= 55) want[(k % 10) * 6 + Math.floor(k / 10)] = 1;
    assert.deepEqual(m, want);
    assert.equal(
      m.reduce((a, b) => a + b),
      45,
    );
    assert.deepEqual(show(m, 6).slice(0, 3), ['..####', '..####', '.####.']);
  });

  it('an RLE of another image size, or whose runs do not add up, is a clear error', () => {
    assert.throws(
      () => segmentationMask({ counts: [1, 2], size: [2, 2] }, 3, 3),
      code('bad-coco', /size 2x2 belongs to an image of 3x3/),
    );
    assert.throws(() => decodeRle([1, 2], 2, 2), code('bad-coco', /covers 3 pixels/));
    assert.throws(() => rleFromString('X'), code('bad-coco', /truncated/));
  });
});

describe('COCO files over a data set', () => {
  let dir: string;
  let data: string;
  const annotations = (extra: object[] = []) => ({
    images: [
      { id: 1, file_name: 'a.png', width: 8, height: 6 },
      { id: 2, file_name: 'sub/b.png', width: 16, height: 12 }, // the data set holds a half-size copy
      { id: 3, file_name: 'gone.png', width: 8, height: 6 },
    ],
    categories: [
      { id: 1, name: 'cat' },
      { id: 7, name: 'dog' },
    ],
    annotations: [
      { id: 10, image_id: 1, category_id: 1, segmentation: [[0, 0, 2, 0, 2, 2, 0, 2]] },
      // A second cat on a.png, as RLE: column 7, rows 0-5 (first run: 7 columns of 6 rows).
      { id: 11, image_id: 1, category_id: 1, segmentation: { counts: [42, 6], size: [6, 8] } },
      { id: 12, image_id: 2, category_id: 7, segmentation: [[0, 0, 16, 0, 16, 6, 0, 6]] },
      { id: 13, image_id: 99, category_id: 7, segmentation: [[0, 0, 1, 0, 1, 1]] },
      { id: 14, image_id: 3, category_id: 1, segmentation: [[0, 0, 1, 0, 1, 1]] },
      ...extra,
    ],
  });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ruledit-coco-'));
    data = join(dir, 'data');
    await mkdir(data);
    const png = (w: number, h: number) =>
      sharp({ create: { width: w, height: h, channels: 3, background: '#406080' } })
        .png()
        .toBuffer();
    await writeFile(join(data, 'a.png'), await png(8, 6));
    await writeFile(join(data, 'b.png'), await png(8, 6));
    await writeFile(join(dir, 'coco.json'), JSON.stringify(annotations()));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('unknown category names are an error that lists the known ones', () => {
    const coco = parseCoco(annotations(), 'x.json');
    assert.deepEqual([...categoryIds(coco, ['dog'])], [['dog', 7]]);
    assert.throws(() => categoryIds(coco, ['unicorn']), code('unknown-concept', /known: cat, dog/));
  });

  it('the index unites instances, resizes to the image file and reports skipped annotations', async () => {
    const index = await buildConceptIndex(
      data,
      { kind: 'coco', file: join(dir, 'coco.json') },
      { cacheDir: join(dir, 'cache') },
    );
    assert.deepEqual(index.concepts, ['cat', 'dog']);
    assert.deepEqual(
      index.images.map((e) => [e.file, Object.keys(e.masks)]),
      [
        [join(data, 'a.png'), ['cat']],
        [join(data, 'b.png'), ['dog']],
      ],
    );
    // cat: 2x2 square + a 6-pixel column = 10 of 48 pixels; dog: top half.
    assert.equal(index.images[0].areas.cat, 10 / 48);
    assert.equal(index.images[1].areas.dog, 0.5);
    const cat = await sharp(index.images[0].masks.cat).extractChannel(0).raw().toBuffer();
    const want = rows('##.....#', '##.....#', '.......#', '.......#', '.......#', '.......#');
    assert.deepEqual(
      Array.from(cat),
      Array.from(want, (v) => v * 255),
    );
    const skipped = Object.fromEntries((index.skipped ?? []).map((s) => [s.reason, s]));
    assert.equal(skipped[`annotation's image_id has no entry in the file's 'images'`]?.count, 1);
    assert.deepEqual(skipped[`annotation's image file is not in the data set folder`]?.examples, [
      'gone.png',
    ]);
  });

  it('a COCO size of another aspect ratio than the image file is an error', async () => {
    const bad = annotations();
    bad.images[1].width = 20;
    await writeFile(join(dir, 'bad.json'), JSON.stringify(bad));
    await assert.rejects(
      buildConceptIndex(
        data,
        { kind: 'coco', file: join(dir, 'bad.json') },
        {
          cacheDir: join(dir, 'cache'),
          concepts: ['dog'],
        },
      ),
      code('bad-mask', /sub\/b\.png: the COCO mask is 20x12 but the image is 8x6/),
    );
  });
});
