import { realpathSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { RuleditError } from '../errors.js';

const IMAGE = new Set(['.png', '.jpg', '.jpeg', '.webp']);

/**
 * The only files the server reads on request: those inside the folders given with --data. Paths
 * come in relative to one of them; anything that resolves (links included) outside it is refused.
 */
export function resolveInside(roots: string[], folder: number, path: string): string {
  const root = roots[folder];
  if (root === undefined) throw new RuleditError('forbidden', `no data folder #${folder}`);
  if (isAbsolute(path) || path.includes('\0'))
    throw new RuleditError(
      'forbidden',
      `give a path relative to the data folder, not ${JSON.stringify(path)}`,
    );
  const full = resolve(root, path);
  let real: string;
  try {
    real = realpathSync(full);
  } catch {
    if (!inside(root, full)) throw outside(path);
    throw new RuleditError('not-found', `no file ${path} in data folder #${folder}`);
  }
  if (!inside(realpathSync(root), real)) throw outside(path);
  return real;
}

const inside = (root: string, p: string) => {
  const rel = relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel) && !rel.startsWith(`..${sep}`));
};

const outside = (path: string) =>
  new RuleditError(
    'forbidden',
    `${path} is outside the folders the server was started with (--data)`,
  );

/** Image files under a data folder (relative paths), at most `limit`, sorted. */
export async function listImages(root: string, limit = 500): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string, depth: number): Promise<void> => {
    if (depth > 4 || out.length >= limit) return;
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (out.length >= limit) return;
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p, depth + 1);
      else if (IMAGE.has(extname(e.name).toLowerCase())) out.push(relative(root, p));
    }
  };
  await walk(root, 0);
  return out;
}
