import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import {
  buildConceptIndex,
  conceptCounts,
  conceptIndexFile,
  loadConceptIndex,
  type ConceptIndex,
} from '../src/concepts/concept-index.ts';
import { loadSegmenter } from '../src/concepts/segment.ts';
import { loadStyle } from '../src/concepts/style.ts';
import { RuleditError } from '../src/errors.ts';
import { GraphBuilder } from '../src/onnx/build.ts';
import { serializeModel } from '../src/onnx/model.ts';
import { ruledit } from './fixtures/cli.ts';

const shared = resolve(import.meta.dirname, '../../shared');

const code = (c: string, has?: RegExp) => (e: unknown) => {
  assert.ok(e instanceof RuleditError, `expected a RuleditError, got ${String(e)}`);
  assert.equal(e.code, c, e.message);
  if (has) assert.match(e.message, has);
  return true;
};

/** A one-channel PNG, 255 where inside(x, y). */
const maskPng = (w: number, h: number, inside: (x: number, y: number) => boolean) =>
  sharp(
    Uint8Array.from({ length: w * h }, (_, p) => (inside(p % w, Math.floor(p / w)) ? 255 : 0)),
    {
      raw: { width: w, height: h, channels: 1 },
    },
  )
    .png()
    .toBuffer();

const solidPng = (w: number, h: number, background: string) =>
  sharp({ create: { width: w, height: h, channels: 3, background } })
    .png()
    .toBuffer();

const grey = (file: string) => sharp(file).extractChannel(0).raw().toBuffer();
const reasons = (index: ConceptIndex) =>
  Object.fromEntries((index.skipped ?? []).map((s) => [s.reason, s]));

describe('concept index from per-image mask files', () => {
  let dir: string;
  let data: string;
  let masks: string;
  let cache: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ruledit-concepts-'));
    [data, masks, cache] = ['data', 'masks', 'cache'].map((d) => join(dir, d));
    for (const f of [data, join(masks, 'sky'), join(masks, 'road')])
      await mkdir(f, { recursive: true });
    for (const name of ['a', 'b', 'c'])
      await writeFile(join(data, `${name}.png`), await solidPng(8, 6, '#808080'));
    // sky of a.png: 16x12 (same aspect ratio), top half white -> top 3 rows at 8x6.
    await writeFile(join(masks, 'sky/a.png'), await maskPng(16, 12, (_, y) => y < 6));
    await writeFile(join(masks, 'sky/b.png'), await maskPng(8, 6, () => false)); // all black
    await writeFile(join(masks, 'road/a.png'), await maskPng(8, 6, (x, y) => y >= 4 && x < 6));
    await writeFile(join(masks, 'road/c.png'), await maskPng(4, 3, (x) => x === 0));
    await writeFile(join(masks, 'road/zzz.png'), await maskPng(8, 6, () => true)); // no image zzz
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('resizes masks to the image, computes areas and reports empty and orphan masks', async () => {
    const source = { kind: 'masks', dir: masks } as const;
    const index = await buildConceptIndex(data, source, { cacheDir: cache });
    assert.equal(index.version, 1);
    assert.equal(index.source, `masks:${masks}`);
    assert.deepEqual(index.concepts, ['road', 'sky']);
    assert.deepEqual(
      index.images.map((e) => [basename(e.file), e.areas]),
      [
        ['a.png', { road: 12 / 48, sky: 0.5 }],
        ['c.png', { road: 12 / 48 }],
      ],
    );
    const sky = await grey(index.images[0].masks.sky);
    assert.deepEqual(
      Array.from(sky),
      Array.from({ length: 48 }, (_, p) => (p < 24 ? 255 : 0)),
    );
    // c.png's 4x3 mask (column 0) scaled x2 -> columns 0-1.
    const road = await grey(index.images[1].masks.road);
    assert.deepEqual(
      Array.from(road),
      Array.from({ length: 48 }, (_, p) => (p % 8 < 2 ? 255 : 0)),
    );
    const skipped = reasons(index);
    assert.deepEqual(skipped['mask file is all black (no concept pixel)'], {
      reason: 'mask file is all black (no concept pixel)',
      count: 1,
      examples: [join(masks, 'sky/b.png')],
    });
    assert.equal(skipped['mask file matches no image of the data set'].count, 1);
    assert.deepEqual(conceptCounts(index), [
      { concept: 'road', images: 2 },
      { concept: 'sky', images: 1 },
    ]);
  });

  it('is cached on disk under the default layout, keyed by the mask files', async () => {
    const source = { kind: 'masks', dir: masks } as const;
    const file = await conceptIndexFile(data, source, { cacheDir: cache });
    assert.match(file, new RegExp(`^${cache}/concepts/[0-9a-f]{32}/index\\.json$`));
    assert.ok(existsSync(file));
    const loaded = await loadConceptIndex(file);
    // A cached index whose masks were cleaned away is rebuilt, not returned with dangling paths.
    await rm(loaded.images[0].masks.sky);
    const rebuilt = await buildConceptIndex(data, source, { cacheDir: cache });
    assert.deepEqual(
      Array.from(await grey(rebuilt.images[0].masks.sky)).slice(20, 28),
      [255, 255, 255, 255, 0, 0, 0, 0],
    );
    assert.deepEqual(
      loaded.images.map((e) => basename(e.file)),
      ['a.png', 'c.png'],
    );
    const only = await conceptIndexFile(data, source, { cacheDir: cache, concepts: ['sky'] });
    assert.notEqual(only, file);
    const skyOnly = await buildConceptIndex(data, source, { cacheDir: cache, concepts: ['sky'] });
    assert.deepEqual(conceptCounts(skyOnly), [{ concept: 'sky', images: 1 }]);
    await writeFile(join(masks, 'sky/c.png'), await maskPng(8, 6, (x) => x < 2));
    assert.notEqual(await conceptIndexFile(data, source, { cacheDir: cache }), file);
    await rm(join(masks, 'sky/c.png'));
    assert.equal(await conceptIndexFile(data, source, { cacheDir: cache }), file);
    await writeFile(join(dir, 'junk.json'), '{"version": 2}');
    await assert.rejects(loadConceptIndex(join(dir, 'junk.json')), code('bad-index'));
  });

  it('unknown concept names, a mask of the wrong aspect ratio and a missing folder are errors', async () => {
    const source = { kind: 'masks', dir: masks } as const;
    await assert.rejects(
      buildConceptIndex(data, source, { cacheDir: cache, concepts: ['road', 'cloud'] }),
      code('unknown-concept', /'cloud'.*known: road, sky/),
    );
    const odd = join(dir, 'odd');
    await mkdir(join(odd, 'sky'), { recursive: true });
    await writeFile(join(odd, 'sky/a.png'), await maskPng(10, 10, () => true));
    await assert.rejects(
      buildConceptIndex(data, { kind: 'masks', dir: odd }, { cacheDir: cache }),
      code('bad-mask', /odd\/sky\/a\.png is 10x10 but the image is 8x6/),
    );
    await assert.rejects(
      buildConceptIndex(data, { kind: 'masks', dir: join(dir, 'none') }, { cacheDir: cache }),
      code('not-found'),
    );
  });

  it('the CLI prints the counts, skips and index path (--json)', async () => {
    const out = await ruledit(['concepts', data, '--masks', masks, '--cache', cache, '--json']);
    assert.equal(out.code, 0, out.stderr);
    const json = JSON.parse(out.stdout);
    assert.deepEqual(json.counts, [
      { concept: 'road', images: 2 },
      { concept: 'sky', images: 1 },
    ]);
    assert.equal(
      json.index,
      await conceptIndexFile(data, { kind: 'masks', dir: masks }, { cacheDir: cache }),
    );
    assert.equal(json.skipped.length, 2);
    const bad = await ruledit(['concepts', data, '--masks', masks, '--coco', 'x.json']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /ruledit: error: give one mask source, not --masks and --coco/);
  });
});

describe('concept masks from a segmentation model (a 1x1-conv model built here)', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ruledit-segment-'));
    // Logits per pixel: background 0, sky 4*R, grass 4*G (R, G in [0,1]).
    const g = new GraphBuilder();
    g.input('input', ['N', 3, 4, 6]);
    const weights = Float32Array.from([0, 0, 0, 4, 0, 0, 0, 4, 0]);
    g.init('W', [3, 3, 1, 1], weights);
    g.init('B', [3], new Float32Array(3));
    const out = g.node('Conv', ['input', 'W', 'B'], {}, 'logits');
    g.output(out, ['N', 3, 4, 6]);
    await mkdir(join(dir, 'model'));
    await writeFile(join(dir, 'model/model.onnx'), serializeModel(g.build().proto));
    await writeFile(join(dir, 'model/labels.txt'), 'background\nsky\ngrass\n');
    await writeFile(
      join(dir, 'model/preprocess.json'),
      JSON.stringify({
        size: [4, 6],
        mean: [0, 0, 0],
        std: [1, 1, 1],
        task: 'semantic-segmentation',
      }),
    );
    // 6x4: columns 0-2 red, 3-5 green, pixel (0,0) a dull yellow (128,128,0) that no class wins.
    const px = Buffer.alloc(6 * 4 * 3);
    for (let p = 0; p < 24; p++) px.set(p % 6 < 3 ? [255, 0, 0] : [0, 255, 0], p * 3);
    px.set([128, 128, 0], 0);
    await mkdir(join(dir, 'data'));
    await writeFile(
      join(dir, 'data/scene.png'),
      await sharp(px, { raw: { width: 6, height: 4, channels: 3 } })
        .png()
        .toBuffer(),
    );
    await writeFile(join(dir, 'data/grey.png'), await solidPng(6, 4, '#000000'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('softmax >= threshold per pixel, then the minimum area', async () => {
    const model = join(dir, 'model/model.onnx');
    // p(sky | red) = e^4 / (e^4 + 2) = 0.9647; p(sky | dull yellow) = e^2.008 / (1 + 2 e^2.008) = 0.47.
    const seg = await loadSegmenter(model);
    assert.deepEqual(seg.concepts, ['sky', 'grass']);
    const r = await seg.segment(join(dir, 'data/scene.png'));
    assert.deepEqual(
      [...r.masks].map(([c, m]) => [c, m.area]),
      [
        ['sky', 11 / 24],
        ['grass', 12 / 24],
      ],
    );
    const sky = r.masks.get('sky')!.mask;
    assert.deepEqual(
      Array.from(sky),
      Array.from({ length: 24 }, (_, p) => (p % 6 < 3 && p > 0 ? 255 : 0)),
    );
    await seg.release();
    const strict = await loadSegmenter(model, { threshold: 0.97 });
    assert.equal((await strict.segment(join(dir, 'data/scene.png'))).masks.size, 0);
    await strict.release();
    const large = await loadSegmenter(model, { minArea: 0.5 });
    assert.deepEqual(
      [...(await large.segment(join(dir, 'data/scene.png'))).masks.keys()],
      ['grass'],
    );
    await large.release();
    await assert.rejects(loadSegmenter(model, { threshold: 0 }), code('bad-option'));
  });

  it('builds an index with only the images that contain a concept', async () => {
    const index = await buildConceptIndex(
      join(dir, 'data'),
      { kind: 'segmentation', model: join(dir, 'model/model.onnx') },
      { cacheDir: join(dir, 'cache'), concepts: ['grass'] },
    );
    assert.equal(
      index.source,
      `segmentation:${join(dir, 'model/model.onnx')} threshold=0.5 minArea=0.01`,
    );
    assert.deepEqual(
      index.images.map((e) => [basename(e.file), e.areas]),
      [['scene.png', { grass: 0.5 }]],
    );
    await assert.rejects(
      buildConceptIndex(
        join(dir, 'data'),
        { kind: 'segmentation', model: join(dir, 'model/model.onnx') },
        {
          cacheDir: join(dir, 'cache'),
          concepts: ['background'],
        },
      ),
      code('unknown-concept', /known: sky, grass/),
    );
  });
});

describe('styles', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ruledit-style-'));
    await mkdir(join(dir, 'ink'));
    await mkdir(join(dir, 'empty'));
    for (const f of ['b.png', 'a.jpg', 'notes.txt', '.hidden.png'])
      await writeFile(join(dir, 'ink', f), await solidPng(2, 2, '#000000'));
    await writeFile(join(dir, 'empty', 'readme.txt'), 'no images');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('a style is a folder of images, sorted; an empty folder or a missing one is an error', async () => {
    assert.deepEqual(await loadStyle(join(dir, 'ink')), {
      name: 'ink',
      images: [join(dir, 'ink/a.jpg'), join(dir, 'ink/b.png')],
    });
    await assert.rejects(loadStyle(join(dir, 'empty')), code('bad-style', /holds no images/));
    await assert.rejects(loadStyle(join(dir, 'nope')), code('not-found'));
  });
});

describe(
  'real segmentation model on ImageNet photos',
  { skip: !existsSync(shared) && '../shared absent: deeplabv3 concept indexes skipped' },
  () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'ruledit-deeplab-'));
    });
    after(() => rm(dir, { recursive: true, force: true }));

    it('deeplabv3-pascal finds the dogs, the car and the cat (4 photos)', async () => {
      const sample = join(shared, 'data/imagenet-sample');
      const files = [
        'n02085620_Chihuahua',
        'n02110958_pug',
        'n04285008_sports_car',
        'n02123045_tabby',
      ];
      await writeFile(join(dir, 'list.txt'), files.map((f) => join(sample, `${f}.jpg`)).join('\n'));
      const index = await buildConceptIndex(
        join(dir, 'list.txt'),
        { kind: 'segmentation', model: join(shared, 'models/deeplabv3-pascal/model.onnx') },
        { cacheDir: join(dir, 'cache') },
      );
      assert.equal(index.concepts.length, 20);
      const byFile = new Map(index.images.map((e) => [basename(e.file, '.jpg'), e.areas]));
      assert.equal(byFile.size, 4);
      assert.ok(byFile.get('n02085620_Chihuahua')!.dog > 0.1);
      assert.ok(byFile.get('n02110958_pug')!.dog > 0.2);
      assert.ok(byFile.get('n04285008_sports_car')!.car > 0.4);
      assert.ok(byFile.get('n02123045_tabby')!.cat > 0.4);
      assert.equal(byFile.get('n02123045_tabby')!.dog, undefined);
      // Every stored mask is at the photo's own size and its area matches its pixels.
      const tabby = index.images.find((e) => e.file.includes('tabby'))!;
      const { data, info } = await sharp(tabby.masks.cat)
        .extractChannel(0)
        .raw()
        .toBuffer({ resolveWithObject: true });
      assert.deepEqual([info.width, info.height], [256, 382]);
      assert.equal(data.filter((v) => v === 255).length / data.length, tabby.areas.cat);
    });

    it('deeplabv3-ade20k finds the road of the street exemplar (IoU >= 0.85 with its hand mask)', async () => {
      const street = join(shared, 'data/exemplars/street-road');
      await writeFile(join(dir, 'street.txt'), join(street, 'image.png'));
      const index = await buildConceptIndex(
        join(dir, 'street.txt'),
        { kind: 'segmentation', model: join(shared, 'models/deeplabv3-ade20k/model.onnx') },
        { cacheDir: join(dir, 'cache') },
      );
      assert.equal(index.concepts.length, 31);
      assert.ok(index.concepts.includes('road') && index.concepts.includes('sky'));
      const [entry] = index.images;
      const grey = async (file: string) =>
        (await sharp(file).extractChannel(0).raw().toBuffer({ resolveWithObject: true })).data;
      const [found, hand] = [
        await grey(entry.masks.road),
        await grey(join(street, 'road_mask.png')),
      ];
      assert.equal(found.length, hand.length);
      let [both, either] = [0, 0];
      for (let i = 0; i < hand.length; i++) {
        const [a, b] = [found[i] >= 128, hand[i] >= 128];
        both += Number(a && b);
        either += Number(a || b);
      }
      assert.ok(both / either >= 0.85, `road IoU ${(both / either).toFixed(3)}`);

      // With the PASCAL segmenter too: one list of both label sets, and a concept both know (car)
      // is the union of their masks.
      const models = ['deeplabv3-ade20k', 'deeplabv3-pascal'].map((m) =>
        join(shared, 'models', m, 'model.onnx'),
      );
      const merged = await buildConceptIndex(
        join(dir, 'street.txt'),
        { kind: 'segmentation', model: models },
        { cacheDir: join(dir, 'cache') },
      );
      const pascal = await buildConceptIndex(
        join(dir, 'street.txt'),
        { kind: 'segmentation', model: models[1] },
        { cacheDir: join(dir, 'cache') },
      );
      assert.equal(merged.concepts.length, 31 + 20 - 4); // car, person, chair and sofa are in both
      assert.ok(['road', 'sky', 'bus', 'aeroplane'].every((c) => merged.concepts.includes(c)));
      const areas = merged.images[0].areas;
      assert.equal(areas.road, entry.areas.road);
      for (const c of Object.keys(pascal.images[0].areas))
        assert.ok(areas[c] >= pascal.images[0].areas[c] && areas[c] >= (entry.areas[c] ?? 0), c);
    });
  },
);
