import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { basename, extname, join, relative } from 'node:path';
import sharp from 'sharp';
import { RuleditError } from '../errors.js';
import { loadMask } from './mask.js';
import { checkRegularFile, readInput } from '../io/read-input.js';

/**
 * Per-image concept masks on disk: MASKDIR/<concept>/<image file stem>.png, 255 = concept. A mask
 * may be smaller or larger than its image as long as the aspect ratio is the same. For data sets
 * with class sub-folders whose file stems repeat, MASKDIR/<concept>/<sub/folder/stem>.png is
 * looked up first.
 */

/** The concepts of a mask folder: its sub-folders, sorted. */
export async function maskConcepts(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    throw new RuleditError('not-found', `mask folder not found: ${dir}`);
  }
  const concepts = entries
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort();
  if (!concepts.length)
    throw new RuleditError(
      'bad-masks',
      `${dir} has no concept sub-folders: expected ${dir}/<concept>/<image file stem>.png`,
    );
  return concepts;
}

/** Stems (file name without extension) used by more than one image: a bare stem is ambiguous. */
export function repeatedStems(files: string[]): Set<string> {
  const seen = new Set<string>();
  const repeated = new Set<string>();
  for (const f of files) {
    const s = stem(f);
    if (seen.has(s)) repeated.add(s);
    seen.add(s);
  }
  return repeated;
}

export type MaskLookup =
  { kind: 'found'; path: string } | { kind: 'none' } | { kind: 'ambiguous'; stem: string };

/** The mask file of `file` (an image of the data set at `root`) for `concept`, if there is one. */
export function findMaskFile(
  dir: string,
  concept: string,
  root: string,
  file: string,
  repeated: Set<string>,
): MaskLookup {
  const rel = relative(root, file);
  const nested = join(dir, concept, rel.slice(0, rel.length - extname(rel).length) + '.png');
  if (existsSync(nested)) return { kind: 'found', path: nested };
  const flat = join(dir, concept, stem(file) + '.png');
  if (!existsSync(flat)) return { kind: 'none' };
  return repeated.has(stem(file))
    ? { kind: 'ambiguous', stem: stem(file) }
    : { kind: 'found', path: flat };
}

/** Every mask file under each concept folder (relative to it, without extension), to spot orphans. */
export async function listMaskFiles(dir: string, concept: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (sub: string) => {
    for (const e of await readdir(join(dir, concept, sub), { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue;
      const rel = sub ? join(sub, e.name) : e.name;
      if (e.isDirectory()) await walk(rel);
      else if (extname(e.name).toLowerCase() === '.png') out.push(rel.slice(0, -4));
    }
  };
  await walk('');
  return out.sort();
}

/**
 * A mask file as grey/255 at the image's own size (width x height, row-major), resized with the
 * same rules as loadMask (same aspect ratio required). `undefined` when the mask is all black:
 * the caller reports that as a skip, it is not an error of the whole run.
 */
export async function readMaskAtImage(
  path: string,
  width: number,
  height: number,
): Promise<Float32Array | undefined> {
  const bytes = await readInput(path, 'mask');
  try {
    // The whole image as 'crop' at the image's size: loadMask's geometry becomes the identity.
    return await loadMask(bytes, width, height, { size: [height, width], cropFraction: 1 });
  } catch (e) {
    if (e instanceof RuleditError && e.code === 'bad-mask') {
      if (await isBlack(bytes)) return undefined;
      throw new RuleditError(e.code, e.message.replace(/^(cannot decode )?mask\b/, `$1${path}`));
    }
    throw e;
  }
}

async function isBlack(bytes: Buffer): Promise<boolean> {
  try {
    const { channels } = await sharp(bytes).flatten({ background: '#000000' }).stats();
    return channels.every((c) => c.max === 0);
  } catch {
    return false;
  }
}

/** Width and height of an image after EXIF rotation (the size every mask refers to). */
export async function uprightSize(file: string): Promise<{ width: number; height: number }> {
  // sharp reads only the header, so the file is checked, not read whole.
  await checkRegularFile(file, 'image');
  try {
    const meta = await sharp(file).metadata();
    return { width: meta.autoOrient.width, height: meta.autoOrient.height };
  } catch (e) {
    throw new RuleditError(
      'bad-image',
      `cannot decode ${file}: ${(e as Error).message.split('\n')[0]} (corrupt or not an image?)`,
    );
  }
}

const stem = (file: string) => basename(file, extname(file));
