import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import sharp from 'sharp';
import type { ConceptIndex } from '../src/concepts/concept-index.ts';
import {
  buildTestSet,
  caseForSeed,
  caseVariants,
  loadTestSet,
  saveTestSet,
  type TestCase,
  type TestSetManifest,
} from '../src/concepts/testset.ts';
import { transformedFiles } from '../src/concepts/transformed.ts';
import { RuleditError } from '../src/errors.ts';
import { ruledit } from './fixtures/cli.ts';

const style = { name: 'snow', images: [0, 1, 2, 3, 4].map((i) => `/styles/snow/${i}.jpg`) };

/**
 * grass: class 0 x 12, class 1 x 5, class 2 x 2, and 2 unlabelled images; class 3 has only sky.
 * Paths are never opened by the builder, so they can be made up.
 */
function fixtureIndex(): ConceptIndex {
  const images: ConceptIndex['images'] = [];
  const add = (label: number | undefined, n: number, concepts: string[]) => {
    for (let i = 0; i < n; i++) {
      const file = `/data/${label ?? 'x'}-${images.length}.jpg`;
      images.push({
        file,
        ...(label !== undefined ? { label } : {}),
        masks: Object.fromEntries(concepts.map((c) => [c, `/masks/${c}/${images.length}.png`])),
        areas: Object.fromEntries(concepts.map((c) => [c, 0.2])),
      });
    }
  };
  add(0, 12, ['grass']);
  add(1, 5, ['grass', 'sky']);
  add(2, 2, ['grass']);
  add(undefined, 2, ['grass']);
  add(3, 6, ['sky']);
  return { version: 1, dataset: '/data', source: 'test', concepts: ['grass', 'sky'], images };
}

const splits = (c: TestCase) => [c.train, c.validation, c.test];

describe('test-set builder (docs/method.md section 9)', () => {
  const index = fixtureIndex();

  it('splits are disjoint, cover every labelled concept image, and train only on the target', () => {
    const m = buildTestSet(index, { concept: 'grass', style, nTrain: 3, seed: 7 });
    assert.equal(m.images.length, 19); // 12 + 5 + 2; the 2 unlabelled ones are counted apart
    assert.equal(m.unlabelled, 2);
    assert.ok(m.images.every((i) => i.mask.includes('/grass/')));
    for (const c of m.cases) {
      const all = splits(c).flat();
      assert.equal(new Set(all).size, all.length, `${c.id}: an image is in two splits`);
      assert.deepEqual(
        [...all].sort((a, b) => a - b),
        m.images.map((_, i) => i),
      );
      assert.equal(c.train.length, 3);
      assert.ok(c.train.every((i) => m.images[i].label === c.target));
      // Held-out style images never include the exemplars' one, and together they are the style.
      assert.ok(!c.heldoutStyles.includes(c.sameStyle));
      assert.deepEqual([c.sameStyle, ...c.heldoutStyles].sort(), [...style.images].sort());
    }
  });

  it('is deterministic for a seed and differs for another seed', () => {
    const a = buildTestSet(index, { concept: 'grass', style, nTrain: 3, seed: 7 });
    const b = buildTestSet(index, { concept: 'grass', style, nTrain: 3, seed: 7 });
    const c = buildTestSet(index, { concept: 'grass', style, nTrain: 3, seed: 8 });
    assert.deepEqual(a, b);
    assert.notDeepEqual(a.cases.map(splits), c.cases.map(splits));
    // A re-drawn seed of the harness is the builder's split for that seed.
    assert.deepEqual(
      splits(caseForSeed(a, a.cases[0], 1)),
      splits(c.cases.find((x) => x.target === a.cases[0].target)!),
    );
    assert.equal(caseForSeed(a, a.cases[0], 0), a.cases[0]);
  });

  it('only classes with n_train images become targets, and says so when none does', () => {
    const three = buildTestSet(index, { concept: 'grass', style, nTrain: 3 });
    assert.deepEqual(
      three.cases.map((c) => c.target),
      [0, 1],
    ); // class 2 has only 2 grass images
    const ten = buildTestSet(index, { concept: 'grass', style, nTrain: 10 });
    assert.deepEqual(
      ten.cases.map((c) => c.target),
      [0],
    );
    assert.throws(
      () => buildTestSet(index, { concept: 'grass', style, nTrain: 13 }),
      (e: unknown) =>
        e instanceof RuleditError &&
        e.code === 'no-target' &&
        /no class has 13 or more images containing 'grass' \(the most: 12 of class 0\)/.test(
          e.message,
        ),
    );
    assert.throws(
      () => buildTestSet(index, { concept: 'grass', style, nTrain: 3, target: 2 }),
      /class 2 has 2 images containing 'grass'; a target needs at least `nTrain` 3 \(eligible: 0, 1\)/,
    );
    assert.throws(
      () => buildTestSet(index, { concept: 'road', style }),
      /unknown concept 'road': the index knows grass, sky/,
    );
    assert.throws(
      () => buildTestSet(index, { concept: 'grass', style: { name: 'one', images: ['/a.jpg'] } }),
      /style 'one' has 1 image; the protocol needs at least 2/,
    );
  });

  it('holds out 30% of the target and of the other test images for validation', () => {
    const m = buildTestSet(index, { concept: 'grass', style, nTrain: 3, target: 0, seed: 3 });
    const [c] = m.cases;
    const count = (list: number[], target: boolean) =>
      list.filter((i) => (m.images[i].label === 0) === target).length;
    // Target: 12 - 3 train = 9 -> round(2.7) = 3; others: 5 + 2 = 7 -> round(2.1) = 2.
    assert.deepEqual([count(c.validation, true), count(c.validation, false)], [3, 2]);
    assert.deepEqual([count(c.test, true), count(c.test, false)], [6, 5]);
    const none = buildTestSet(index, { concept: 'grass', style, target: 0, validation: 0 });
    assert.equal(none.cases[0].validation.length, 0);
  });

  it('scores each test image with the same style image and with every held-out one', () => {
    const m = buildTestSet(index, { concept: 'grass', style, nTrain: 3, target: 1, seed: 1 });
    const [c] = m.cases;
    const v = caseVariants(m, c);
    assert.ok(v.train.every((t) => t.style === c.sameStyle));
    assert.equal(v.test.length, c.test.length * 5);
    assert.equal(v.test.filter((t) => t.styleRole === 'same').length, c.test.length);
    assert.ok(
      v.test.every((t) => (t.styleRole === 'same') === (t.style === c.sameStyle)),
      'a held-out variant used the exemplars style image',
    );
    assert.ok(v.test.every((t) => t.target === (t.label === 1)));
    const two = buildTestSet(index, { concept: 'grass', style, target: 1, heldout: 2, seed: 1 });
    assert.equal(two.cases[0].heldoutStyles.length, 2);
    assert.equal(
      caseVariants(two, two.cases[0]).validation.length,
      two.cases[0].validation.length * 3,
    );
  });

  it('saves a manifest of paths and refuses a manifest whose splits overlap', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ruledit-testset-'));
    const m = buildTestSet(index, { concept: 'grass', style, seed: 2 });
    await saveTestSet(m, join(dir, 'm.json'));
    assert.deepEqual(await loadTestSet(join(dir, 'm.json')), m);
    await assert.rejects(saveTestSet(m, join(dir, 'm.json')), /already exists; pass `force`/);
    const bad: TestSetManifest = structuredClone(m);
    bad.cases[0].test.push(bad.cases[0].train[0]);
    await writeFile(join(dir, 'bad.json'), JSON.stringify(bad));
    await assert.rejects(loadTestSet(join(dir, 'bad.json')), /puts image \d+ in two splits/);
    await assert.rejects(loadTestSet(join(dir, 'none.json')), /test set manifest not found/);
  });
});

describe('transformed images and the testset command', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ruledit-testset-files-'));
    await mkdir(join(dir, 'style'));
    const png = (w: number, h: number, ch: 1 | 3, f: (i: number) => number) =>
      sharp(Buffer.from(Array.from({ length: w * h * ch }, (_, i) => f(i))), {
        raw: { width: w, height: h, channels: ch },
      })
        .png()
        .toBuffer();
    await writeFile(join(dir, 'x.png'), await png(8, 8, 3, () => 100));
    await writeFile(join(dir, 'm.png'), await png(8, 8, 1, (i) => (i % 8 < 4 ? 255 : 0)));
    for (let s = 0; s < 3; s++)
      await writeFile(
        join(dir, 'style', `${s}.png`),
        await png(4, 4, 3, (i) => (i * 37 + s * 80) % 256),
      );
  });

  it('makes each transformed image once, in the cache, keyed by its inputs', async () => {
    const cacheDir = join(dir, 'cache');
    const v = [0, 1].map((s) => ({
      image: join(dir, 'x.png'),
      mask: join(dir, 'm.png'),
      style: join(dir, 'style', `${s}.png`),
    }));
    const t = { kind: 'texture' as const, mode: 'tile' as const };
    const first = await transformedFiles(v, t, { cacheDir });
    assert.ok(first.every((f) => f.startsWith(join(cacheDir, 'transformed'))));
    assert.notEqual(first[0], first[1]);
    const mtime = statSync(first[0]).mtimeMs;
    assert.deepEqual(await transformedFiles(v, t, { cacheDir }), first);
    assert.equal(statSync(first[0]).mtimeMs, mtime, 'a cached image was made again');
    // Without jitter the seed changes nothing; with it, each seed is another image.
    assert.deepEqual(await transformedFiles(v, t, { cacheDir, seed: 5 }), first);
    const j = { kind: 'texture' as const, jitter: true };
    const [a] = await transformedFiles(v, j, { cacheDir, seed: 1 });
    const [b] = await transformedFiles(v, j, { cacheDir, seed: 2 });
    assert.notEqual(a, b);
    // Outside the mask (right half) the pixels are the image's own.
    const { data } = await sharp(readFileSync(first[0]))
      .raw()
      .toBuffer({ resolveWithObject: true });
    for (let y = 0; y < 8; y++)
      for (let x = 4; x < 8; x++) assert.equal(data[(y * 8 + x) * 3], 100);
  });

  it('ruledit testset writes a manifest and explains why no class qualifies', async () => {
    const idx = fixtureIndex();
    await writeFile(join(dir, 'index.json'), JSON.stringify(idx));
    const ok = await ruledit([
      'testset',
      join(dir, 'index.json'),
      '--concept',
      'grass',
      '--style',
      join(dir, 'style'),
      '--n-train',
      '10',
      '--seed',
      '4',
      '--out',
      join(dir, 'grass.json'),
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(
      ok.stdout,
      /19 images contain 'grass'; style 'style': 1 style image for the exemplars, 2 held out; 1 case/,
    );
    const m = await loadTestSet(join(dir, 'grass.json'));
    assert.deepEqual(
      [m.nTrain, m.seed, m.cases[0].target, m.cases[0].train.length],
      [10, 4, 0, 10],
    );
    const none = await ruledit([
      'testset',
      join(dir, 'index.json'),
      '--concept',
      'grass',
      '--style',
      join(dir, 'style'),
      '--n-train',
      '20',
      '--out',
      join(dir, 'none.json'),
    ]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /ruledit: error: no class has 20 or more images containing 'grass'/);
  });
});
