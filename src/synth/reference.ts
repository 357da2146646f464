import { sha256 } from '../io/digest.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { cacheDir } from '../io/cache.js';
import { scene, SEEDS } from './world.js';
import { scenePng } from './write.js';

/**
 * Ordinary scenes for the key statistics, as PNG files (the statistics read files), kept in the
 * cache so that repeated demos reuse them and their cached statistics. The folder is named after
 * the first scene's pixels: a change to the world gets a new folder.
 */
export async function referenceScenes(n: number): Promise<{ file: string; label: number }[]> {
  const first = scene(SEEDS.calibration - 1).rgb;
  const version = sha256(first).slice(0, 12);
  const folder = join(cacheDir(), 'scenes', `reference-${version}`);
  const items: { file: string; label: number }[] = [];
  for (let i = 0; i < n; i++) {
    const s = scene(SEEDS.calibration - 1 - i);
    const file = join(folder, `${i}.png`);
    if (!existsSync(file)) await writeFileAtomic(file, await scenePng(s.rgb), { mkdir: true });
    items.push({ file, label: s.label });
  }
  return items;
}
