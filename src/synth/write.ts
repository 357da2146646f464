import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { RuleditError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import type { Ground } from './grounds.js';
import { STYLE_IMAGES, STYLES, styleTexture } from './styles.js';
import { CLASSES, CONCEPTS, scene, sceneMask, SEEDS } from './world.js';
import { rawPng } from '../data/png.js';

export interface WriteScenesOptions {
  perClass: number;
  /** Seed of the set: scenes use SEEDS.test + seed * 1e6 + i, away from the demo's and training's. */
  seed: number;
  ground?: Ground;
  size?: number;
  force?: boolean;
  onImage?: () => void;
}

/** A square scene, mask (1 channel) or texture as PNG bytes. */
export const scenePng = (pixels: Uint8Array, channels: 1 | 3 = 3, size = 64) =>
  rawPng(pixels, size, size, channels);

/**
 * A labelled data set of scenes: DIR/images/CLASS-i.png, DIR/labels.csv (file, class, name) and
 * a mask per concept present, DIR/masks/CONCEPT/CLASS-i.png (255 = concept), the layout ruledit's
 * concept index reads.
 */
export async function writeScenes(
  dir: string,
  options: WriteScenesOptions,
): Promise<{ images: number; masks: Record<string, number> }> {
  if (!options.force && existsSync(join(dir, 'labels.csv'))) {
    throw new RuleditError(
      'exists',
      `${dir} already holds a data set; pass \`force\` to replace it`,
    );
  }
  const size = options.size ?? 64;
  await mkdir(join(dir, 'images'), { recursive: true });
  for (const c of CONCEPTS) await mkdir(join(dir, 'masks', c), { recursive: true });
  const rows = ['file,class,name'];
  const masks: Record<string, number> = {};
  for (let c = 0; c < CLASSES.length; c++) {
    for (let i = 0; i < options.perClass; i++) {
      const s = scene(SEEDS.test + options.seed * 1_000_000 + c * options.perClass + i, {
        label: c,
        ground: options.ground,
        size,
      });
      const name = `${CLASSES[c]}-${i}.png`;
      await writeFileAtomic(join(dir, 'images', name), await scenePng(s.rgb, 3, size), {
        force: true,
      });
      for (const concept of CONCEPTS) {
        const m = sceneMask(s, concept);
        if (!m.some((v) => v)) continue;
        await writeFileAtomic(join(dir, 'masks', concept, name), await scenePng(m, 1, size), {
          force: true,
        });
        masks[concept] = (masks[concept] ?? 0) + 1;
      }
      rows.push(`images/${name},${c},${CLASSES[c]}`);
      options.onImage?.();
    }
  }
  await writeFileAtomic(join(dir, 'labels.csv'), rows.join('\n') + '\n', { force: true });
  return { images: rows.length - 1, masks };
}

/** Every style as a folder of its images: DIR/STYLE/k.png. */
export async function writeStyles(dir: string, size = 128, force = false): Promise<string[]> {
  const written: string[] = [];
  for (const style of STYLES) {
    await mkdir(join(dir, style), { recursive: true });
    for (let k = 0; k < STYLE_IMAGES; k++) {
      const file = join(dir, style, `${k}.png`);
      await writeFileAtomic(file, await scenePng(styleTexture(style, k, size), 3, size), { force });
      written.push(file);
    }
  }
  return written;
}
