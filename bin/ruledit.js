#!/usr/bin/env node
// The CLI runs the compiled JavaScript in dist/ (`npm run build`; the package ships it). A checkout
// that was never built runs its TypeScript sources through tsx, a development dependency.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

// glibc gives every thread a malloc arena and keeps what it frees there: `serve` runs each edit in
// a new worker thread, and 50 edits grew its RSS by 185-580 MB; with two arenas, by 70 MB
// (bench/server-memory.ts). The variable is read when the process starts, so serve restarts itself
// with it set.
if (process.platform === 'linux' && process.argv[2] === 'serve' && !process.env.MALLOC_ARENA_MAX) {
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, MALLOC_ARENA_MAX: '2' },
  });
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => (process.exitCode = code ?? (signal ? 1 : 0)));
} else if (existsSync(new URL('../dist/cli/main.js', import.meta.url))) {
  await import('../dist/cli/main.js');
} else if (existsSync(new URL('../src/cli/main.ts', import.meta.url))) {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
} else {
  process.stderr.write('ruledit: error: dist/ is missing: run `npm run build`\n');
  process.exitCode = 2;
}
