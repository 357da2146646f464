// `npm run build`: the compiled library and CLI with their declarations (tsc), tfjs-core's gradient
// registrations (esbuild, below), then the web page (Vite), into dist/ — what `npm pack` ships.
// Nothing here runs at a consumer's install.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

process.chdir(fileURLToPath(new URL('..', import.meta.url)));
rmSync('dist', { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
// tfjs-core's Node bundle registers no gradients and no chained tensor methods; its ESM sources do,
// but Node cannot load them (extensionless imports). Bundled here, those two modules register into
// the registries every copy of tfjs-core shares (src/grad/engine.ts), so the 141 MB umbrella package
// @tensorflow/tfjs, with layers, converter, data and webgl, is not a dependency.
const { build } = await import('esbuild');
await build({
  stdin: {
    contents: [
      "import '@tensorflow/tfjs-core/dist/register_all_gradients';",
      "import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';",
    ].join('\n'),
    resolveDir: process.cwd(),
  },
  bundle: true,
  platform: 'node',
  format: 'esm',
  outfile: 'dist/vendor/tfjs-gradients.js',
  logLevel: 'warning',
});
const { buildWeb } = await import(new URL('../dist/server/web.js', import.meta.url).href);
await buildWeb(fileURLToPath(new URL('../dist/web', import.meta.url)));
