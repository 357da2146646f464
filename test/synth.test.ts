import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gradEngine } from '../src/grad/engine.ts';
import { compareWithOnnx } from '../src/synth/agreement.ts';
import { sceneModelToOnnx } from '../src/synth/export.ts';
import { wordPixels } from '../src/synth/font.ts';
import { initParams } from '../src/synth/net.ts';
import { STYLE_IMAGES, STYLES, styleTexture } from '../src/synth/styles.ts';
import { trainSceneModel } from '../src/synth/train.ts';
import {
  CLASSES,
  CONCEPTS,
  replaceConcept,
  scene,
  sceneMask,
  STICKER_WORD,
  VEHICLES,
} from '../src/synth/world.ts';
import { normals } from '../src/util/random.ts';

const differing = (a: Uint8Array, b: Uint8Array) => {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
};

describe('the scene world', () => {
  it('draws the same pixels for the same seed, other pixels for another', () => {
    const a = scene(42);
    assert.deepEqual(scene(42).rgb, a.rgb);
    assert.deepEqual(scene(42).owner, a.owner);
    assert.ok(differing(scene(43).rgb, a.rgb) > 1000);
    assert.equal(a.rgb.length, 64 * 64 * 3);
    assert.equal(scene(42, { size: 96 }).rgb.length, 96 * 96 * 3);
  });

  it('has at least 10 classes, each drawn when asked, and masks that partition what is visible', () => {
    assert.ok(CLASSES.length >= 10);
    for (let c = 0; c < CLASSES.length; c++) {
      const s = scene(1000 + c, { label: c });
      assert.equal(s.label, c);
      const masks = CONCEPTS.map((k) => sceneMask(s, k));
      // A pixel is in at most one concept mask (objects' bodies and clutter are in none).
      for (let i = 0; i < s.owner.length; i++) {
        assert.ok(masks.filter((m) => m[i]).length <= 1);
      }
      assert.ok(
        masks[CONCEPTS.indexOf('sky')].some((v) => v),
        `${CLASSES[c]} has sky`,
      );
    }
  });

  it('plants the rules: vehicles stand on road, boats on water, about 94% of the time', () => {
    const n = 300;
    for (const [name, ground] of [
      ['car', 'road'],
      ['bus', 'road'],
      ['boat', 'water'],
      ['cow', 'grass'],
      ['umbrella', 'sand'],
    ] as const) {
      const label = CLASSES.indexOf(name);
      const home = Array.from({ length: n }, (_, i) => scene(i, { label }).ground === ground);
      const rate = home.filter(Boolean).length / n;
      assert.ok(rate > 0.88 && rate < 0.99, `${name} on ${ground}: ${rate}`);
    }
    const car = scene(7, { label: 0, ground: 'road' });
    assert.ok(
      sceneMask(car, 'wheel').some((v) => v),
      'a car shows its wheels',
    );
    assert.ok(
      sceneMask(car, 'window').some((v) => v),
      'a car shows its windows',
    );
  });

  it('a sticker, written or blank, changes only the pixels of its own mask', () => {
    for (let seed = 0; seed < 20; seed++) {
      const plain = scene(seed, { sticker: null });
      const written = scene(seed, { sticker: { word: STICKER_WORD } });
      const blank = scene(seed, { sticker: { word: STICKER_WORD, blank: true } });
      const m = sceneMask(written, 'sticker');
      assert.ok(m.filter((v) => v).length >= (wordPixels(STICKER_WORD).width + 4) * 9 * 0.5);
      for (let i = 0; i < m.length; i++) {
        if (m[i]) continue;
        for (let k = 0; k < 3; k++) {
          assert.equal(written.rgb[3 * i + k], plain.rgb[3 * i + k]);
          assert.equal(blank.rgb[3 * i + k], plain.rgb[3 * i + k]);
        }
      }
      assert.ok(differing(written.rgb, blank.rgb) > 0, 'the letters show');
      assert.deepEqual(sceneMask(blank, 'sticker'), m, 'same paper, same mask');
    }
  });

  it('replaceConcept changes exactly the pixels of the concept', () => {
    const s = scene(3, { label: CLASSES.indexOf('truck'), ground: 'road' });
    const snow = styleTexture('snow', 0, 64);
    const out = replaceConcept(s, 'road', snow);
    const m = sceneMask(s, 'road');
    let inside = 0;
    for (let i = 0; i < m.length; i++) {
      for (let k = 0; k < 3; k++) {
        const want = m[i] ? snow[3 * i + k] : s.rgb[3 * i + k];
        assert.equal(out[3 * i + k], want);
      }
      if (m[i]) inside++;
    }
    assert.ok(inside > 500, `road pixels ${inside}`);
  });

  it('the 3x5 font writes each letter as its own pixels', () => {
    const { pixels, width } = wordPixels('COW');
    assert.equal(width, 11);
    assert.equal(pixels.length, 7 + 8 + 12);
    assert.throws(() => wordPixels('3'), /no glyph/);
  });
});

describe('styles', () => {
  it(`has ${STYLES.length} styles of ${STYLE_IMAGES} distinct images each`, () => {
    assert.ok(STYLES.length >= 8 && STYLE_IMAGES >= 3);
    for (const s of STYLES) {
      const images = Array.from({ length: STYLE_IMAGES }, (_, k) => styleTexture(s, k, 32));
      assert.deepEqual(styleTexture(s, 0, 32), images[0], 'deterministic');
      for (let a = 0; a < images.length; a++) {
        for (let b = a + 1; b < images.length; b++) {
          assert.ok(differing(images[a], images[b]) > 200, `${s} ${a} vs ${b}`);
        }
      }
    }
  });
});

describe('the scene classifier', () => {
  it('exports to ONNX with the same logits as TF.js (max abs difference reported)', async (t) => {
    const { tf } = await gradEngine();
    const p = initParams(CLASSES.length, 64, 5);
    // Non-trivial BatchNorm statistics, so a wrong axis or epsilon would show.
    p.convs.forEach((c, i) => {
      c.mean = normals(c.cout, 100 + i, 0.3);
      c.variance = normals(c.cout, 200 + i, 0.5).map((v) => 0.5 + v * v);
      c.gamma = normals(c.cout, 300 + i, 0.2).map((v) => 1 + v);
      c.beta = normals(c.cout, 400 + i, 0.1);
    });
    const model = sceneModelToOnnx(p);
    const { maxLogitDifference } = await compareWithOnnx(tf, p, model, 64);
    t.diagnostic(`max |logit TF.js - logit ONNX| = ${maxLogitDifference.toExponential(2)}`);
    assert.ok(maxLogitDifference < 1e-4, `${maxLogitDifference}`);
    const ops = model.proto.graph!.node!.map((n) => n.opType);
    assert.equal(ops.filter((o) => o === 'BatchNormalization').length, 7);
    assert.equal(ops.filter((o) => o === 'Add').length, 2);
  });

  it('learns from scenes: 20 steps of 16 get well above chance on held-out scenes', async () => {
    const r = await trainSceneModel({ steps: 20, batch: 16, lr: 3e-3, seed: 2, validation: 200 });
    assert.ok(r.validationAccuracy > 25, `held-out accuracy ${r.validationAccuracy}%`);
    assert.equal(VEHICLES.length, 4);
  });
});
