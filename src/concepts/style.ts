import { readdir } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import { RuleditError } from '../errors.js';

/**
 * A style: a named folder of several style images (docs/method.md section 9), so "the same style image"
 * and "held-out images of the same style" can be told apart. The name is the folder's name.
 */
export interface Style {
  name: string;
  /** Absolute paths, sorted by name, so image k is the same file on every machine. */
  images: string[];
}

const IMAGE = new Set(['.jpg', '.jpeg', '.png', '.webp']);

export async function loadStyle(dir: string): Promise<Style> {
  const root = resolve(dir);
  let names: string[];
  try {
    names = await readdir(root);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new RuleditError(
      'not-found',
      code === 'ENOTDIR'
        ? `${dir} is a file; a style is a folder of style images`
        : `style folder not found: ${dir}`,
    );
  }
  const images = names
    .filter((n) => !n.startsWith('.') && IMAGE.has(extname(n).toLowerCase()))
    .sort()
    .map((n) => join(root, n));
  if (!images.length)
    throw new RuleditError(
      'bad-style',
      `style folder ${dir} holds no images (JPEG, PNG or WebP): a style is a folder of style images`,
    );
  return { name: basename(root), images };
}
