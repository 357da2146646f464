#!/usr/bin/env node
// The CLI runs the compiled JavaScript in dist/ (`npm run build`; the package ships it). A checkout
// that was never built runs its TypeScript sources through tsx, a development dependency.
import { existsSync } from 'node:fs';

if (existsSync(new URL('../dist/cli/main.js', import.meta.url))) {
  await import('../dist/cli/main.js');
} else if (existsSync(new URL('../src/cli/main.ts', import.meta.url))) {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
} else {
  process.stderr.write('ruledit: error: dist/ is missing: run `npm run build`\n');
  process.exitCode = 2;
}
