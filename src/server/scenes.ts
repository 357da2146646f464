import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { scenePng } from '../synth/write.ts';
import type { DatasetItem } from '../data/dataset.ts';
import { cacheDir } from '../edit/stats.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { STYLE_IMAGES, styleTexture } from '../synth/styles.ts';
import { CLASSES, replaceConcept, scene, sceneMask, SEEDS, type Concept } from '../synth/world.ts';
import type { Ground } from '../synth/grounds.ts';

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

/**
 * Built-in test folders, written once into the cache (the evaluation reads files): ordinary
 * scenes, and every class standing on road with the road covered by held-out snow images, the
 * demo's "vehicles on snow" case.
 */
export async function builtinTestSets(perClass = 8): Promise<TestSets> {
  const version = createHash('sha256')
    .update(scene(SEEDS.test + 7_000_000).rgb)
    .digest('hex')
    .slice(0, 12);
  const root = join(cacheDir(), 'scenes', `web-${version}-${perClass}`);
  const clean: DatasetItem[] = [];
  const snow: DatasetItem[] = [];
  const snowImages = Array.from({ length: STYLE_IMAGES - 1 }, (_, k) =>
    styleTexture('snow', k + 1, 64),
  );
  for (let c = 0; c < CLASSES.length; c++) {
    for (let i = 0; i < perClass; i++) {
      const n = c * perClass + i;
      const a = join(root, 'clean', `${CLASSES[c]}-${i}.png`);
      if (!existsSync(a))
        await writeFileAtomic(
          a,
          await scenePng(scene(SEEDS.test + 7_000_000 + n, { label: c }).rgb),
          {
            mkdir: true,
            force: true,
          },
        );
      clean.push({ file: a, label: c, name: CLASSES[c] });
      const b = join(root, 'snow-road', `${CLASSES[c]}-${i}.png`);
      if (!existsSync(b)) {
        const s = scene(SEEDS.test + 7_500_000 + n, { label: c, ground: 'road', sticker: null });
        await writeFileAtomic(
          b,
          await scenePng(replaceConcept(s, 'road', snowImages[n % snowImages.length])),
          { mkdir: true, force: true },
        );
      }
      snow.push({ file: b, label: c, name: CLASSES[c] });
    }
  }
  return {
    test: {
      title: 'built-in: scenes on road, road covered with held-out snow images',
      items: snow,
    },
    clean: { title: 'built-in: ordinary scenes', items: clean },
  };
}
