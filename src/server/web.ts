import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDir } from '../io/cache.js';

const WEB_SOURCE = fileURLToPath(new URL('../../web', import.meta.url));
/** The page built when packing (`npm run build`), beside the compiled server: dist/web. */
const SHIPPED = fileURLToPath(new URL('../web', import.meta.url));

/**
 * The page to serve. The package ships it built; run from sources (tests, development), it is
 * built with Vite's JS API on the first start (and whenever web/ changes) into the cache, named by
 * a hash of its sources, so it is never stale and no build output is committed.
 */
export async function ensureWebBuild(log: (m: string) => void = () => {}): Promise<string> {
  if (existsSync(join(SHIPPED, 'index.html'))) return SHIPPED;
  const hash = await sourceHash();
  const out = join(cacheDir(), 'web', hash);
  if (existsSync(join(out, 'index.html'))) return out;
  log(`building the page into ${out}`);
  await buildWeb(out);
  // Builds of earlier versions of the page are never served again.
  for (const old of await readdir(dirname(out)))
    if (old !== hash) await rm(join(dirname(out), old), { recursive: true, force: true });
  return out;
}

/** Build the page from web/ into `out` (Vite is a development dependency: sources only). */
export async function buildWeb(out: string): Promise<void> {
  const { build } = await import('vite');
  await build({
    root: WEB_SOURCE,
    base: './',
    configFile: false,
    logLevel: 'warn',
    build: { outDir: out, emptyOutDir: true, assetsInlineLimit: 0 },
  });
}

async function sourceHash(): Promise<string> {
  const h = createHash('sha256');
  const files = (await readdir(WEB_SOURCE, { recursive: true }))
    .filter((f) => /\.(ts|html|css)$/.test(f) && !f.includes('node_modules'))
    .sort();
  for (const f of files) h.update(f).update(await readFile(join(WEB_SOURCE, f)));
  return h.digest('hex').slice(0, 16);
}
