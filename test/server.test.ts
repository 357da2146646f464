// The web editor's API (issue 7): session token, upload limit, folder confinement, JSON errors,
// one job at a time, exact undo. Runs on the built-in scene model through fastify's inject.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { modelFromProto, parseModel } from '../src/onnx/model.ts';
import { readHistory } from '../src/onnx/history.ts';
import { tensorToFloat32 } from '../src/onnx/tensor.ts';
import type { OnnxModel } from '../src/onnx/model.ts';
import { createServer } from '../src/server/app.ts';
import { KEPT_JOBS, type JobRecord } from '../src/server/jobs.ts';
import type { EditOutcome } from '../src/server/tasks.ts';
import { explainRejection, type Workbench } from '../src/server/workbench.ts';
import { RuleditError } from '../src/errors.ts';
import { BUILTIN_MODEL } from '../src/synth/builtin.ts';
import { ruledit } from './fixtures/cli.ts';

// Lets a developer point the tests at another copy of the scene model while it is being retrained.
const MODEL = process.env.RULEDIT_SERVE_TEST_MODEL ?? BUILTIN_MODEL;
const TOKEN = 'test-token-0123456789';
const H = { 'x-ruledit-token': TOKEN };

let app: FastifyInstance;
let wb: Workbench;
let data: string;
let outside: string;

before(async () => {
  const root = await mkdtemp(join(tmpdir(), 'ruledit-server-test-'));
  data = join(root, 'data');
  outside = join(root, 'secret');
  await mkdir(join(data, 'cars'), { recursive: true });
  await mkdir(outside);
  const red = await sharp({ create: { width: 80, height: 60, channels: 3, background: '#c03020' } })
    .png()
    .toBuffer();
  await writeFile(join(data, 'cars', 'red.png'), red);
  await writeFile(join(outside, 'secret.png'), red);
  await symlink(join(outside, 'secret.png'), join(data, 'link.png'));
  ({ app, workbench: wb } = await createServer({
    modelPath: MODEL,
    builtin: true,
    data: [data],
    token: TOKEN,
  }));
});

after(async () => {
  await wb?.jobs.idle();
  await app?.close();
});

/** Weights of every initializer, by name. */
const weights = (m: OnnxModel) =>
  new Map(m.proto.graph!.initializer!.map((t) => [t.name!, tensorToFloat32(t)]));

async function sample(): Promise<{ id: string; masks: Record<string, number[]> }> {
  const r = await app.inject({
    method: 'POST',
    url: '/api/images',
    headers: H,
    payload: { sample: 'sample-0' },
  });
  assert.equal(r.statusCode, 200, r.body);
  return r.json();
}

describe('ruledit serve API', () => {
  it('refuses /api calls without the session token or with a wrong one (401)', async () => {
    const none = await app.inject({ url: '/api/info' });
    assert.equal(none.statusCode, 401);
    assert.match(none.json().error, /token/);
    const wrong = await app.inject({ url: '/api/info', headers: { 'x-ruledit-token': 'nope' } });
    assert.equal(wrong.statusCode, 401);
    const wrongQuery = await app.inject({ url: `/api/health?token=${TOKEN}x` });
    assert.equal(wrongQuery.statusCode, 401);
    assert.equal((await app.inject({ url: '/api/info', headers: H })).statusCode, 200);
    assert.equal((await app.inject({ url: `/api/health?token=${TOKEN}` })).statusCode, 200);
  });

  it('answers only requests that name this server (403 for another Host or Origin)', async () => {
    for (const headers of [
      { ...H, host: 'evil.example:8017' },
      { ...H, host: 'localhost:8017', origin: 'http://evil.example' },
    ]) {
      const r = await app.inject({ url: '/api/info', headers });
      assert.equal(r.statusCode, 403, JSON.stringify(headers));
      assert.match(r.json().error, /another host/);
    }
    const own = { ...H, host: '127.0.0.1:8017', origin: 'http://127.0.0.1:8017' };
    assert.equal((await app.inject({ url: '/api/info', headers: own })).statusCode, 200);
  });

  it('refuses a 16000x16000 texture from its header, without decoding it', async () => {
    const png = await sharp({
      create: { width: 16000, height: 16000, channels: 3, background: '#808080' },
    })
      .png({ compressionLevel: 9 })
      .toBuffer();
    global.gc?.();
    const before = process.memoryUsage().rss;
    const r = await app.inject({
      method: 'POST',
      url: '/api/textures',
      headers: H,
      payload: { upload: png.toString('base64') },
    });
    const grew = (process.memoryUsage().rss - before) / 2 ** 20;
    assert.equal(r.statusCode, 400, r.body);
    assert.match(r.json().error, /16000x16000 \(256 megapixels\); ruledit decodes at most 50/);
    assert.ok(grew < 200, `RSS grew ${grew.toFixed(0)} MB`);
  });

  it('refuses an upload over the size limit (413)', async () => {
    const big = Buffer.alloc(9 * 1024 * 1024, 7).toString('base64');
    const r = await app.inject({
      method: 'POST',
      url: '/api/images',
      headers: H,
      payload: { upload: big },
    });
    assert.equal(r.statusCode, 413);
    assert.match(r.json().error, /limit/);
  });

  it('reads only inside the --data folders (403 outside, links included)', async () => {
    const inside = await app.inject({
      method: 'POST',
      url: '/api/images',
      headers: H,
      payload: { folder: 0, path: 'cars/red.png' },
    });
    assert.equal(inside.statusCode, 200, inside.body);
    for (const path of [
      '../secret/secret.png',
      join(outside, 'secret.png'),
      'cars/../../secret/secret.png',
      'link.png',
    ]) {
      const r = await app.inject({
        method: 'POST',
        url: '/api/images',
        headers: H,
        payload: { folder: 0, path },
      });
      assert.equal(r.statusCode, 403, `${path}: ${r.body}`);
      assert.match(r.json().error, /outside|relative/);
    }
    const folder = await app.inject({
      method: 'POST',
      url: '/api/images',
      headers: H,
      payload: { folder: 0, path: 'cars' },
    });
    assert.equal(folder.statusCode, 400, 'a folder is not an image (it was a 500)');
    assert.match(folder.json().error, /cars in data folder #0 is not a file/);
    assert.equal((await app.inject({ url: '/api/files?folder=3', headers: H })).statusCode, 403);
    const files = await app.inject({ url: '/api/files?folder=0', headers: H });
    assert.deepEqual(files.json().files, ['cars/red.png', 'link.png']);
  });

  it('answers malformed JSON and invalid bodies with 400 and a message', async () => {
    const bad = await app.inject({
      method: 'POST',
      url: '/api/edit',
      headers: { ...H, 'content-type': 'application/json' },
      payload: '{"image": "img-1", "mask": [0,',
    });
    assert.equal(bad.statusCode, 400);
    assert.match(bad.json().error, /JSON/);
    const invalid = await app.inject({
      method: 'POST',
      url: '/api/edit',
      headers: H,
      payload: { image: 'img-1', mask: 'all', replacement: { fill: 'white' } },
    });
    assert.equal(invalid.statusCode, 400);
    assert.match(invalid.json().error, /mask/);
    const img = await sample();
    const empty = await app.inject({
      method: 'POST',
      url: '/api/preview',
      headers: H,
      payload: { image: img.id, mask: img.masks.road.map(() => 0), replacement: { fill: 'white' } },
    });
    assert.equal(empty.statusCode, 400);
    assert.match(empty.json().error, /mask is empty/);
    // Options of the registry only, within its bounds; an unknown field is refused, not dropped.
    const mask = img.masks.road;
    for (const [payload, why] of [
      [{ settings: { 'finetune-local': { lr: -1 } } }, /lr/],
      [{ settings: { rewrite: { rank: 0 } } }, /rank/],
      [{ settings: { 'finetune-global': { optimizer: 'rmsprop' } } }, /optimizer/],
      [{ settings: { 'retrain-last': { layer: 'auto' } } }, /additional/],
      [{ rank: 2 }, /additional/],
    ] as const) {
      const r = await app.inject({
        method: 'POST',
        url: '/api/edit',
        headers: H,
        payload: { image: img.id, mask, replacement: { fill: 'white' }, ...payload },
      });
      assert.equal(r.statusCode, 400, JSON.stringify(payload));
      assert.match(r.json().error, why);
    }
  });

  it('queues two edits posted at once, one after the other, and undo restores the exact weights', async () => {
    const original = weights(wb.model);
    const img = await sample();
    const body = (style: string) => ({
      image: img.id,
      mask: img.masks.road,
      replacement: { style },
    });
    const [a, b] = await Promise.all([
      app.inject({ method: 'POST', url: '/api/edit', headers: H, payload: body('snow') }),
      app.inject({ method: 'POST', url: '/api/edit', headers: H, payload: body('gravel') }),
    ]);
    assert.equal(a.statusCode, 202, a.body);
    assert.equal(b.statusCode, 202, b.body);
    // The API answers while the jobs run: the work happens in a worker thread, off the request path.
    const t0 = performance.now();
    const health = await app.inject({ url: '/api/health', headers: H });
    assert.equal(health.statusCode, 200);
    assert.ok(performance.now() - t0 < 1000, 'health answered within a second during the edits');
    await wb.jobs.idle();
    // Either request may reach the queue first: order the jobs as the queue received them.
    const [j1, j2] = [a.json<JobRecord>(), b.json<JobRecord>()]
      .map((j) => wb.jobs.get(j.id))
      .sort((x, y) => Number(x.id) - Number(y.id));
    assert.equal(j1.state, 'done', j1.error);
    assert.equal(j2.state, 'done', j2.error);
    assert.ok(
      j2.startedAt! >= j1.finishedAt!,
      `second started ${j2.startedAt} before the first finished ${j1.finishedAt}`,
    );
    const history = readHistory(wb.model);
    assert.deepEqual(
      history.map((h) => h.method),
      ['rewrite', 'rewrite'],
    );
    const edited = weights(wb.model);
    const changed = [...original.keys()].filter(
      (k) => !bytesEqual(original.get(k)!, edited.get(k)!),
    );
    assert.equal(
      changed.length,
      1,
      `one tensor changed (both edits hit the same block): ${changed}`,
    );

    // The downloaded model carries both edits.
    const dl = await app.inject({ url: `/api/model.onnx?token=${TOKEN}` });
    assert.equal(dl.statusCode, 200);
    assert.equal(readHistory(modelFromProto(parseModel(dl.rawPayload))).length, 2);
    assert.equal((await app.inject({ url: '/api/report.html', headers: H })).statusCode, 200);

    for (let i = 0; i < 2; i++) {
      const r = await app.inject({ method: 'POST', url: '/api/revert', headers: H });
      assert.equal(r.statusCode, 202);
      await wb.jobs.idle();
      assert.equal(wb.jobs.get(r.json<JobRecord>().id).state, 'done');
    }
    const restored = weights(wb.model);
    for (const [name, w] of original)
      assert.ok(bytesEqual(w, restored.get(name)!), `${name} restored bit for bit`);
    const none = await app.inject({ method: 'POST', url: '/api/revert', headers: H });
    await wb.jobs.idle();
    assert.equal(wb.jobs.get(none.json<JobRecord>().id).state, 'failed');
    assert.match(wb.jobs.get(none.json<JobRecord>().id).error!, /no edit to revert/);
  });

  it('keeps the last finished jobs only', async () => {
    const ids = Array.from(
      { length: KEPT_JOBS + 5 },
      () => wb.jobs.submit('noop', async () => 1).id,
    );
    await wb.jobs.idle();
    const kept = wb.jobs.list().map((j) => j.id);
    assert.ok(kept.length <= KEPT_JOBS, `${kept.length} jobs kept`);
    assert.deepEqual(kept.slice(-KEPT_JOBS), ids.slice(-KEPT_JOBS));
    assert.throws(() => wb.jobs.get(ids[0]), { code: 'no-job' });
  });

  it('cancels a queued job before it starts and a running one at once', async () => {
    const img = await sample();
    const body = { image: img.id, mask: img.masks.road, replacement: { fill: '#ffffff' } };
    const first = (
      await app.inject({ method: 'POST', url: '/api/edit', headers: H, payload: body })
    ).json<JobRecord>();
    const second = (
      await app.inject({ method: 'POST', url: '/api/edit', headers: H, payload: body })
    ).json<JobRecord>();
    const c2 = await app.inject({
      method: 'POST',
      url: `/api/jobs/${second.id}/cancel`,
      headers: H,
    });
    assert.equal(c2.json<JobRecord>().state, 'cancelled');
    while (wb.jobs.get(first.id).state === 'queued') await new Promise((r) => setTimeout(r, 10));
    await app.inject({ method: 'POST', url: `/api/jobs/${first.id}/cancel`, headers: H });
    await wb.jobs.idle();
    assert.equal(wb.jobs.get(first.id).state, 'cancelled');
    assert.equal(wb.jobs.get(second.id).startedAt, undefined);
    assert.equal(readHistory(wb.model).length, 4, 'nothing was added by the cancelled edits');
  });

  it('guards a careless style edit: flips within budget on held-out images, clean accuracy kept', async () => {
    const img = await sample();
    const mask = carelessMask(img.masks.road);
    const info = (await app.inject({ url: '/api/info', headers: H })).json();
    const auto = info.blocks.find((b: { auto: boolean }) => b.auto);
    assert.ok(auto, 'the block table says which block auto edits');
    assert.match(auto.keyGrid, /^\d+x\d+$/);
    const body = {
      image: img.id,
      mask,
      replacement: { style: 'snow' },
      settings: { rewrite: { layer: 'auto' } },
    };
    const preview = await app.inject({
      method: 'POST',
      url: '/api/preview',
      headers: H,
      payload: body,
    });
    assert.equal(preview.statusCode, 200, preview.body);
    assert.equal(preview.json().exemplars.length, 4, 'one exemplar per snow image');

    const guarded = await editResult(body);
    const g = guarded.guard!;
    assert.ok(g, 'the response carries the guard figures');
    assert.ok(g.images > 0, `${g.images} guard images`);
    assert.ok(
      g.estimatedDrop <= g.maxDrop,
      `estimated drop ${g.estimatedDrop} within ${g.maxDrop}`,
    );
    assert.equal(g.maxDrop, 0.25, 'the default budget');
    assert.ok(g.meanKL >= 0 && Number.isFinite(g.meanKL));
    assert.equal(guarded.strength, g.strength);
    assert.ok(guarded.strength! > 0 && guarded.strength! <= 1);
    assert.equal(guarded.block, auto.name);
    assert.equal(`${guarded.keyGrid!.height}x${guarded.keyGrid!.width}`, auto.keyGrid);
    assert.ok(guarded.keyGrid!.masked > 0);
    assert.equal(guarded.exemplars.length, 4);
    const e = guarded.evaluation;
    assert.ok(e.cleanDrop <= 1, `clean accuracy ${e.cleanBefore}% -> ${e.cleanAfter}%`);
    assert.match(e.testTitle, /never saw/, 'the test scenes use held-out snow images');

    // The same edit with a budget that lets everything through: what the guard prevented.
    await revert();
    const loose = await editResult({
      ...body,
      settings: { rewrite: { layer: 'auto', maxDrop: 100 } },
    });
    await revert();
    console.log(
      `careless snow mask on ${guarded.block} (${g.images} guard images): with the guard ` +
        `strength ${g.strength.toFixed(3)}, ${g.flipRate.toFixed(2)}% flips, mean KL ` +
        `${g.meanKL.toExponential(2)}, clean drop ${e.cleanDrop.toFixed(1)} points, test ` +
        `${e.testBefore.toFixed(1)} -> ${e.testAfter.toFixed(1)}%; at full strength ` +
        `${loose.guard!.flipRate.toFixed(2)}% flips, clean drop ${loose.evaluation.cleanDrop.toFixed(1)} ` +
        `points, test ${loose.evaluation.testAfter.toFixed(1)}%`,
    );
    assert.equal(loose.strength, 1);
  });

  it('fails a job the guard rejected with its code and a clear message, model unchanged', async () => {
    // No edit of the built-in model is refused even at 1/64 strength, so the library's error is
    // raised directly where the worker's would arrive (see the guard's own tests for the back-off).
    const records = readHistory(wb.model).length;
    const job = wb.jobs.submit('rewrite', () =>
      Promise.reject(
        new RuleditError(
          'guard-rejected',
          'the edit is estimated to cost 3.00 points of clean top-1 accuracy, and still 0.50 points at 1/64 of its ' +
            'strength (budget 0.25): nothing was written. Try another `layer`, or a larger `maxDrop`',
        ),
      ).catch(explainRejection),
    );
    await wb.jobs.idle();
    const done = wb.jobs.get(job.id);
    assert.equal(done.state, 'failed');
    assert.equal(done.code, 'guard-rejected');
    assert.match(done.error!, /^the safety guard rejected the edit: .*the model is unchanged/);
    assert.match(done.error!, /another block, or a larger drop budget/);
    assert.equal(readHistory(wb.model).length, records);
  });

  it("fine-tunes with the CLI's defaults: the page's finetune-local and `ruledit finetune` give the same weights", async () => {
    const img = await sample();
    const stored = wb.images.get(img.id)!;
    const info = (await app.inject({ url: '/api/info', headers: H })).json();
    const block: string = info.blocks.find((b: { auto: boolean }) => b.auto).name;
    // What the page sends with its controls left as they are: the registry's defaults.
    const d = info.methods['finetune-local'].options;
    assert.deepEqual([d.steps.default, d.lr.default, d.optimizer.default], [400, 1e-4, 'sgd']);
    const web = await editResult({
      image: img.id,
      mask: img.masks.road,
      replacement: { fill: '#ffffff' },
      method: 'finetune-local',
      label: 0,
      settings: { 'finetune-local': { layer: block, steps: d.steps.default, lr: d.lr.default } },
    });
    assert.equal(web.block, block);
    const webModel = modelFromProto(
      parseModel((await app.inject({ url: '/api/model.onnx', headers: H })).rawPayload),
    );
    await revert();

    const dir = await mkdtemp(join(tmpdir(), 'ruledit-web-cli-'));
    const png = (data: Buffer, channels: 1 | 3, file: string) =>
      sharp(data, { raw: { width: stored.width, height: stored.height, channels } })
        .png()
        .toFile(join(dir, file));
    await png(stored.rgb, 3, 'x.png');
    await png(Buffer.from(img.masks.road.map((v) => (v > 0 ? 255 : 0))), 1, 'm.png');
    const cli = await ruledit([
      'finetune',
      MODEL,
      ...['--image', join(dir, 'x.png'), '--mask', join(dir, 'm.png'), '--fill', '#ffffff'],
      ...['--label', '0', '--layer', block, '--out', join(dir, 'cli.onnx')],
    ]);
    assert.equal(cli.code, 0, cli.stderr);
    const cliModel = modelFromProto(parseModel(await readFile(join(dir, 'cli.onnx'))));
    const [a, b, base] = [weights(webModel), weights(cliModel), weights(wb.model)];
    let changed = 0;
    for (const [name, w] of a) {
      const c = b.get(name)!;
      const diff = w.reduce((m, v, i) => Math.max(m, Math.abs(v - c[i])), 0);
      assert.ok(diff <= 1e-6, `${name}: the page and the CLI differ by ${diff}`);
      if (!bytesEqual(w, base.get(name)!)) changed++;
    }
    assert.equal(changed, 1, "only the block's weight changed, in both");
  });
});

/**
 * What a hasty user paints for "the road": all of the lower half (the car's lower part with it)
 * and a band of sky above the road, besides the road itself.
 */
function carelessMask(road: number[]): number[] {
  const side = Math.sqrt(road.length);
  const top = Math.floor(road.findIndex((v) => v > 0) / side);
  return road.map((v, i) => {
    const y = Math.floor(i / side);
    return v > 0 || y >= side / 2 || (y >= top - 6 && y < top) ? 1 : 0;
  });
}

/** Run an edit to the end and return its result (the job must succeed). */
async function editResult(payload: object): Promise<EditOutcome> {
  const r = await app.inject({ method: 'POST', url: '/api/edit', headers: H, payload });
  assert.equal(r.statusCode, 202, r.body);
  await wb.jobs.idle();
  const job = wb.jobs.get(r.json<JobRecord>().id);
  assert.equal(job.state, 'done', job.error);
  return job.result as EditOutcome;
}

async function revert(): Promise<void> {
  const r = await app.inject({ method: 'POST', url: '/api/revert', headers: H });
  await wb.jobs.idle();
  assert.equal(wb.jobs.get(r.json<JobRecord>().id).state, 'done');
}

function bytesEqual(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
}
