// `npm run build`: the compiled library and CLI with their declarations (tsc), then the web page
// (Vite), into dist/ — what `npm pack` ships. Nothing here runs at a consumer's install.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

process.chdir(fileURLToPath(new URL('..', import.meta.url)));
rmSync('dist', { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
const { buildWeb } = await import(new URL('../dist/server/web.js', import.meta.url).href);
await buildWeb(fileURLToPath(new URL('../dist/web', import.meta.url)));
