// The web editor's memory over a long session: N sequential edits through the API (a sample scene,
// its road painted white, rewrite under the guard, each undone every other time), RSS after each.
// MALLOC_ARENA_MAX=2 npx tsx bench/server-memory.ts [--edits 50]: `ruledit serve` sets the variable
// itself (bin/ruledit.js); without it glibc's per-thread arenas keep what each job's worker freed.
import { createServer } from '../src/server/app.ts';
import { BUILTIN_MODEL } from '../src/synth/builtin.ts';
import { flag } from './snow-problem.ts';

if (!process.env.MALLOC_ARENA_MAX)
  console.warn(
    'MALLOC_ARENA_MAX is not set: this measures glibc arenas, not what `ruledit serve` runs',
  );
const TOKEN = 'bench-token-0123456789';
const H = { 'x-ruledit-token': TOKEN };
const { app, workbench: wb } = await createServer({
  modelPath: BUILTIN_MODEL,
  builtin: true,
  data: [],
  token: TOKEN,
});
const post = async (url: string, payload?: object) => {
  const r = await app.inject({ method: 'POST', url, headers: H, payload });
  if (r.statusCode >= 300) throw new Error(`${url}: ${r.statusCode} ${r.body}`);
  await wb.jobs.idle();
  return r.json();
};
const img = await post('/api/images', { sample: 'sample-0' });
const body = { image: img.id, mask: img.masks.road, replacement: { fill: '#ffffff' } };
const rss = () => process.memoryUsage().rss / 2 ** 20;
const edits = Number(flag('--edits', '50'));
// Undo every Nth edit (1: every edit, so the model, and its edit history, stay the same size).
const revertEvery = Number(flag('--revert-every', '2'));
// The first edit builds the reference scenes, test folders and statistics: measured from after it.
await post('/api/edit', body);
global.gc?.();
const start = rss();
const t0 = performance.now();
for (let i = 1; i < edits; i++) {
  await post('/api/edit', body);
  if (i % revertEvery === 0) await post('/api/revert');
  if (i % 5 === 0)
    console.log(
      `${i} edits: RSS ${rss().toFixed(0)} MB (+${(rss() - start).toFixed(0)}), main heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MB, buffers ${(process.memoryUsage().arrayBuffers / 2 ** 20).toFixed(0)} MB`,
    );
}
global.gc?.();
console.log(
  `${edits} edits in ${((performance.now() - t0) / 1000).toFixed(0)} s: RSS ${start.toFixed(0)} -> ${rss().toFixed(0)} MB (+${(rss() - start).toFixed(0)} MB); jobs kept ${wb.jobs.list().length}; model ${(wb.modelBytes().length / 2 ** 20).toFixed(2)} MB`,
);
await app.close();
