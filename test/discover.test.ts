import assert from 'node:assert/strict';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import sharp from 'sharp';
import type { ConceptIndex } from '../src/concepts/concept-index.ts';
import { loadStyle, type Style } from '../src/concepts/style.ts';
import { parsePreprocess } from '../src/data/preprocess.ts';
import { discoverRules } from '../src/eval/discover.ts';
import { GraphBuilder } from '../src/onnx/build.ts';
import type { OnnxModel } from '../src/onnx/model.ts';
import { saveModel } from '../src/onnx/save.ts';
import { rng } from '../src/util/random.ts';
import { ruledit } from './fixtures/cli.ts';

const S = 16;
const PREPROCESS = { size: S, crop_fraction: 1, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };
const spec = parsePreprocess(PREPROCESS, 'test');
const CLASSES = ['cow', 'fox', 'whale'];

/**
 * A classifier with a known rule: per-pixel red, green and blue detectors (1x1 conv, c.x - 1.5,
 * ReLU; grey, white and beige give 0), averaged over the image, then
 *   cow = 5 red + 10 green - 1,  fox = 5 red,  whale = 5 blue + 0.5.
 * A red animal is a cow only on green grass: 'cow' relies on 'grass', nothing relies on 'sky'.
 */
function grassModel(): OnnxModel {
  const g = new GraphBuilder(13);
  g.input('image', ['N', 3, S, S]);
  const protos = [
    [1, -1, -1],
    [-1, 1, -1],
    [-1, -1, 1],
  ];
  let x = g.node(
    'Conv',
    [
      'image',
      g.init('det.w', [3, 3, 1, 1], Float32Array.from(protos.flat())),
      g.init('det.b', [3], Float32Array.from([-1.5, -1.5, -1.5])),
    ],
    {},
    'det',
  );
  x = g.node('Relu', [x], {}, 'det.relu');
  x = g.node('GlobalAveragePool', [x], {}, 'pool');
  x = g.node('Flatten', [x], {}, 'flatten');
  // Gemm with transB: rows are classes, columns (red, green, blue).
  const w = Float32Array.from([5, 10, 0, 5, 0, 0, 0, 0, 5]);
  g.node(
    'Gemm',
    [x, g.init('fc.w', [3, 3], w), g.init('fc.b', [3], Float32Array.from([-1, 0, 0.5]))],
    { transB: 1 },
    'logits',
  );
  g.output('logits', ['N', 3]);
  return g.build();
}

let dir: string;
let index: ConceptIndex;
let styles: Style[];
const model = grassModel();

const png = (px: Uint8Array, channels: 1 | 3, size = S) =>
  sharp(px, { raw: { width: size, height: size, channels } })
    .png()
    .toBuffer();

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ruledit-discover-'));
  for (const d of ['images', 'masks', 'snow', 'sand']) await mkdir(join(dir, d));
  const images: ConceptIndex['images'] = [];
  const rows = ['file,class'];
  // 4 cows on grass, 4 foxes and 4 whales on grey, and 2 foxes on grass (too few to score).
  const scenes: [number, boolean][] = [
    ...Array.from({ length: 4 }, () => [0, true] as [number, boolean]),
    ...Array.from({ length: 4 }, () => [1, false] as [number, boolean]),
    ...Array.from({ length: 4 }, () => [2, false] as [number, boolean]),
    [1, true],
    [1, true],
  ];
  for (const [n, [cls, grass]] of scenes.entries()) {
    const u = rng(n + 1);
    const px = new Uint8Array(S * S * 3);
    const masks = { grass: new Uint8Array(S * S), sky: new Uint8Array(S * S) };
    const [ox, oy] = [2 + Math.floor(u() * 8), 4 + Math.floor(u() * 6)];
    for (let y = 0; y < S; y++)
      for (let x = 0; x < S; x++) {
        const animal = x >= ox && x < ox + 5 && y >= oy && y < oy + 5;
        const p = y * S + x;
        let rgb = [128, 128, 128].map((v) => v + Math.round((u() - 0.5) * 30));
        if (animal) rgb = cls === 2 ? [20, 20, 235] : [235, 20, 20];
        else if (y >= S / 2 && grass) [rgb, masks.grass[p]] = [[20, 220, 30], 255];
        else if (y < S / 2) masks.sky[p] = 255;
        px.set(rgb, p * 3);
      }
    const name = `${n}.png`;
    await writeFile(join(dir, 'images', name), await png(px, 3));
    const entry: ConceptIndex['images'][number] = {
      file: join(dir, 'images', name),
      label: cls,
      masks: {},
      areas: {},
    };
    for (const c of ['grass', 'sky'] as const) {
      if (!masks[c].some((v) => v)) continue;
      await writeFile(join(dir, 'masks', `${c}-${name}`), await png(masks[c], 1));
      entry.masks[c] = join(dir, 'masks', `${c}-${name}`);
      entry.areas[c] = 0.4;
    }
    images.push(entry);
    rows.push(`${name},${cls}`);
  }
  await writeFile(join(dir, 'images', 'labels.csv'), rows.join('\n') + '\n');
  // Two styles of three images: snow (near white) and sand (beige); neither is red, green or blue.
  for (const [style, base] of [
    ['snow', [235, 238, 245]],
    ['sand', [225, 200, 160]],
  ] as const)
    for (let s = 0; s < 3; s++) {
      const u = rng(50 + s);
      const tex = Uint8Array.from({ length: 8 * 8 * 3 }, (_, i) =>
        Math.min(255, base[i % 3] + Math.round((u() - 0.5) * 20)),
      );
      await writeFile(join(dir, style, `${s}.png`), await png(tex, 3, 8));
    }
  index = {
    version: 1,
    dataset: join(dir, 'images'),
    source: 'test',
    concepts: ['grass', 'sky'],
    images,
  };
  styles = [await loadStyle(join(dir, 'snow')), await loadStyle(join(dir, 'sand'))];
});

describe('rule discovery', () => {
  it('ranks the concept x class the model relies on first', async () => {
    const d = await discoverRules(model, index, {
      spec,
      styles,
      minImages: 3,
      classNames: CLASSES,
      cacheDir: join(dir, 'cache'),
    });
    const [top, ...rest] = d.rows;
    assert.deepEqual(
      [top.concept, top.className, top.images, top.before, top.after, top.drop],
      ['grass', 'cow', 4, 100, 0, 100],
    );
    assert.deepEqual(top.perStyle, { snow: 0, sand: 0 });
    // Sky matters to no class; every sky cell keeps its accuracy.
    assert.deepEqual(
      rest.map((r) => [r.concept, r.className, r.images, r.drop]),
      [
        ['sky', 'fox', 6, 0],
        ['sky', 'cow', 4, 0],
        ['sky', 'whale', 4, 0],
      ],
    );
    // The two foxes on grass are fewer than --min-images: reported, not scored.
    assert.deepEqual(d.skipped, [{ concept: 'grass', class: 1, images: 2 }]);
    assert.equal(d.variants, (4 + 14) * 6);
    await assert.rejects(
      discoverRules(model, index, { spec, styles, concepts: ['road'] }),
      /unknown concept 'road': the index knows grass, sky/,
    );
  });

  it('with --min-images 1 the foxes on grass show a negative drop: grass hurts them', async () => {
    const d = await discoverRules(model, index, {
      spec,
      styles: styles.slice(0, 1),
      concepts: ['grass'],
      minImages: 1,
      cacheDir: join(dir, 'cache'),
    });
    assert.deepEqual(
      d.rows.map((r) => [r.className, r.before, r.after, r.drop]),
      [
        ['0', 100, 0, 100],
        ['1', 0, 100, -100],
      ],
    );
  });

  it('ruledit discover prints the ranked table', async () => {
    await saveModel(model, join(dir, 'model.onnx'));
    await writeFile(join(dir, 'preprocess.json'), JSON.stringify(PREPROCESS));
    await writeFile(join(dir, 'labels.txt'), CLASSES.join('\n'));
    await writeFile(join(dir, 'index.json'), JSON.stringify(index));
    const args = [
      'discover',
      join(dir, 'model.onnx'),
      join(dir, 'images'),
      '--index',
      join(dir, 'index.json'),
      '--styles',
      `${join(dir, 'snow')},${join(dir, 'sand')}`,
    ];
    const env = { RULEDIT_CACHE: join(dir, 'cache') };
    const r = await ruledit([...args, '--concepts', 'grass,sky'], env);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.match(
      lines[0],
      /^4 \(concept, class\) pairs, 108 transformed images.*1 pairs with fewer than 3/,
    );
    assert.match(lines[2], /^concept\s+class\s+images\s+before\s+after\s+drop\s+snow\s+sand$/);
    assert.match(lines[4], /^grass\s+0 cow\s+4\s+100.0\s+0.0\s+100.0\s+0.0\s+0.0$/);
    const bad = await ruledit([...args, '--concepts', 'grass,road'], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /ruledit: error: unknown concept 'road'/);
  });
});
