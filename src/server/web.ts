import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDir } from '../edit/stats.ts';

export const WEB_SOURCE = fileURLToPath(new URL('../../web', import.meta.url));

/**
 * The page is built with Vite's JS API on the first start (and whenever web/ changes) into the
 * cache, named by a hash of its sources: a fresh clone needs only `npm ci`, nothing is fetched,
 * and no build output is ever committed or stale. A build takes a second or two.
 */
export async function ensureWebBuild(log: (m: string) => void = () => {}): Promise<string> {
  const hash = await sourceHash();
  const out = join(cacheDir(), 'web', hash);
  if (existsSync(join(out, 'index.html'))) return out;
  log(`building the page into ${out}`);
  const { build } = await import('vite');
  await build({
    root: WEB_SOURCE,
    base: './',
    configFile: false,
    logLevel: 'warn',
    build: { outDir: out, emptyOutDir: true, assetsInlineLimit: 0 },
  });
  // Builds of earlier versions of the page are never served again.
  for (const old of await readdir(dirname(out)))
    if (old !== hash) await rm(join(dirname(out), old), { recursive: true, force: true });
  return out;
}

async function sourceHash(): Promise<string> {
  const h = createHash('sha256');
  const files = (await readdir(WEB_SOURCE, { recursive: true }))
    .filter((f) => /\.(ts|html|css)$/.test(f) && !f.includes('node_modules'))
    .sort();
  for (const f of files) h.update(f).update(await readFile(join(WEB_SOURCE, f)));
  return h.digest('hex').slice(0, 16);
}
