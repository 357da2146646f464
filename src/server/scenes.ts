import { sha256 } from '../io/digest.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { scenePng } from '../synth/write.js';
import type { DatasetItem } from '../data/dataset.js';
import { cacheDir } from '../io/cache.js';
import { writeFileAtomic } from '../io/atomic.js';
import { STYLE_IMAGES, styleTexture, type StyleName } from '../synth/styles.js';
import { CLASSES, replaceConcept, scene, sceneMask, SEEDS, type Concept } from '../synth/world.js';
import type { Ground } from '../synth/grounds.js';
import { referenceScenes } from '../synth/reference.js';
import type { TestSources } from './sources.js';

/**
 * What the page offers with the built-in scene model: sample scenes (with their concept masks,
 * the "pick a mask from the concept index" path), and two test folders of generated scenes.
 */
export interface Sample {
  id: string;
  caption: string;
  rgb: Uint8Array;
  masks: Partial<Record<Concept, Uint8Array>>;
}

const SAMPLE_SPECS: { label: string; ground: Ground }[] = [
  { label: 'car', ground: 'road' },
  { label: 'truck', ground: 'road' },
  { label: 'bus', ground: 'road' },
  { label: 'cow', ground: 'grass' },
  { label: 'boat', ground: 'water' },
  { label: 'umbrella', ground: 'sand' },
];

export function sampleScenes(): Sample[] {
  return SAMPLE_SPECS.map(({ label, ground }, i) => {
    // The first scene of a seed range of its own where the ground covers a good part of the image.
    for (let seed = SEEDS.test - 5000 - i * 100; ; seed++) {
      const s = scene(seed, {
        label: CLASSES.indexOf(label as (typeof CLASSES)[number]),
        ground,
        sticker: null,
      });
      const m = sceneMask(s, ground);
      if (m.filter((v) => v).length < 0.3 * m.length) continue;
      return {
        id: `sample-${i}`,
        caption: `${label} on ${ground}`,
        rgb: s.rgb,
        masks: { [ground]: m, sky: sceneMask(s, 'sky') },
      };
    }
  });
}

export interface TestSets {
  /** Per-class before/after with fixed and broken images. */
  test: { title: string; items: DatasetItem[] };
  /** The ordinary data, for the clean accuracy drop. */
  clean: { title: string; items: DatasetItem[] };
}

/** Test scenes per class: 200 clean images resolve a clean accuracy drop to half a point. */
const PER_CLASS = 20;

/**
 * Built-in test folders, written once into the cache (the evaluation reads files): ordinary
 * scenes, and every class standing on road with the road covered by `style`, the demo's
 * "vehicles on snow" case. The edit uses all STYLE_IMAGES images of a style, so the test scenes
 * are covered with further images of the same generator (numbers STYLE_IMAGES and up), which
 * neither the edit nor the page ever shows: the test measures the style, not the images.
 */
export async function builtinTestSets(
  style: StyleName = 'snow',
  perClass = PER_CLASS,
): Promise<TestSets> {
  const version = sha256(scene(SEEDS.test + 7_000_000).rgb).slice(0, 12);
  const root = join(cacheDir(), 'scenes', `web-${version}-${perClass}`);
  const clean: DatasetItem[] = [];
  const styled: DatasetItem[] = [];
  const heldOut = heldOutStyleImages(style);
  for (let c = 0; c < CLASSES.length; c++) {
    for (let i = 0; i < perClass; i++) {
      const n = c * perClass + i;
      const a = join(root, 'clean', `${CLASSES[c]}-${i}.png`);
      if (!existsSync(a))
        await writeFileAtomic(
          a,
          await scenePng(scene(SEEDS.test + 7_000_000 + n, { label: c }).rgb),
          { mkdir: true, force: true },
        );
      clean.push({ file: a, label: c, name: CLASSES[c] });
      const b = join(root, `${style}-road-held-out`, `${CLASSES[c]}-${i}.png`);
      if (!existsSync(b)) {
        const s = scene(SEEDS.test + 7_500_000 + n, { label: c, ground: 'road', sticker: null });
        await writeFileAtomic(
          b,
          await scenePng(replaceConcept(s, 'road', heldOut[n % heldOut.length])),
          { mkdir: true, force: true },
        );
      }
      styled.push({ file: b, label: c, name: CLASSES[c] });
    }
  }
  const shown = `${STYLE_IMAGES}-${STYLE_IMAGES + HELD_OUT - 1}`;
  return {
    test: {
      title: `built-in: scenes on road, road covered with ${style} images the edit never saw (${style} ${shown})`,
      items: styled,
    },
    clean: { title: 'built-in: ordinary scenes', items: clean },
  };
}

/** How many held-out images of a style cover the test scenes. */
const HELD_OUT = 3;

/** Images STYLE_IMAGES.. of the style's generator: the same style, never an exemplar. */
export function heldOutStyleImages(style: StyleName, size = 64): Uint8Array[] {
  return Array.from({ length: HELD_OUT }, (_, k) => styleTexture(style, STYLE_IMAGES + k, size));
}

/**
 * Reference images of the built-in model: a quarter (200) is held out for the safety guard, which
 * calibrates the model's probabilities on their labels (at least 50 needed).
 */
const BUILTIN_REFERENCE = 800;

/** The built-in scene world as the editor's sources: sample scenes, test scenes per style. */
export function sceneSources(): TestSources {
  return {
    samples: sampleScenes(),
    styled: true,
    testSets: builtinTestSets,
    reference: () => referenceScenes(BUILTIN_REFERENCE),
  };
}
