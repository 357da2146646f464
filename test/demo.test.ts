import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadClassifier } from '../src/classifier.ts';
import { runSceneDemo } from '../src/demo/scenes.ts';
import { DEFAULT_CHROMIUM, screenshotReport } from '../src/report/screenshot.ts';
import { BUILTIN_MODEL } from '../src/synth/builtin.ts';
import { predictScenes } from '../src/synth/predict.ts';
import { CLASSES, scene, SEEDS, VEHICLES } from '../src/synth/world.ts';
import { ruledit } from './fixtures/cli.ts';
import { buildConceptIndex } from '../src/concepts/concept-index.ts';
import { loadStyle } from '../src/concepts/style.ts';
import { discoverRules } from '../src/eval/discover.ts';
import { writeScenes, writeStyles } from '../src/synth/write.ts';

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;

describe('the built-in scene model', () => {
  it('is committed, and classifies held-out scenes with >= 90% top-1 under ONNX Runtime', async () => {
    assert.ok(existsSync(BUILTIN_MODEL), `${BUILTIN_MODEL} is missing`);
    const { model, labels } = await loadClassifier(BUILTIN_MODEL);
    assert.deepEqual(labels, [...CLASSES]);
    const scenes = Array.from({ length: 300 }, (_, i) => scene(SEEDS.validation + 5000 + i));
    const predicted = await predictScenes(
      model,
      scenes.map((s) => s.rgb),
      64,
    );
    const top1 = (100 * predicted.filter((p, i) => p === scenes[i].label).length) / scenes.length;
    assert.ok(top1 >= 90, `held-out top-1 ${top1}%`);
  });

  it('reduced demo: snow breaks vehicles, one car exemplar fixes the other vehicles, clean drop <= 2', async (t) => {
    const { result } = await runSceneDemo(await loadClassifier(BUILTIN_MODEL), {
      images: 20,
      finetune: false,
      sticker: false,
    });
    const vehicles = result.classes.filter((c) => (VEHICLES as string[]).includes(c.name));
    const clean = mean(vehicles.map((c) => c.clean));
    const snowy = mean(vehicles.map((c) => c.transformed));
    t.diagnostic(`vehicles on road ${clean.toFixed(1)}%, on snow ${snowy.toFixed(1)}%`);
    assert.ok(clean - snowy >= 25, `snow costs ${clean - snowy} points`);
    const others = vehicles.filter((c) => c.name !== result.exemplarClass);
    const gap = mean(others.map((c) => c.clean - c.transformed));
    const recovered = mean(others.map((c) => c.after.rewrite - c.transformed));
    t.diagnostic(`other vehicles: gap ${gap.toFixed(1)} points, recovered ${recovered.toFixed(1)}`);
    assert.ok(recovered >= gap / 2, `recovered ${recovered} of ${gap}`);
    // Every test card shows a prediction the method changed, and says which method.
    const cards = result.pictures.filter((p) => p.before !== undefined);
    assert.ok(cards.length >= 1, 'cards of fixed or broken scenes');
    for (const c of cards) {
      assert.match(c.caption, /^rewrite (fixed|broke): /);
      assert.notEqual(c.after!.replace(/ \(rewrite\)$/, ''), c.before, c.caption);
    }
    const [rewrite] = result.methods;
    t.diagnostic(`clean ${rewrite.cleanBefore.toFixed(1)}% -> ${rewrite.cleanAfter.toFixed(1)}%`);
    assert.ok(rewrite.cleanDrop <= 2, `clean drop ${rewrite.cleanDrop}`);
  });

  it('rule discovery puts the planted rules (vehicles <- road, boat <- water) at the top', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'ruledit-discover-builtin-'));
    await writeScenes(join(dir, 'scenes'), { perClass: 8, seed: 3 });
    await writeStyles(join(dir, 'styles'), 64);
    const { model, spec, labels } = await loadClassifier(BUILTIN_MODEL);
    const index = await buildConceptIndex(
      join(dir, 'scenes'),
      { kind: 'masks', dir: join(dir, 'scenes', 'masks') },
      { cacheDir: join(dir, 'cache'), concepts: ['road', 'water', 'grass', 'sand'] },
    );
    const styles = await Promise.all(
      ['snow', 'wood'].map((s) => loadStyle(join(dir, 'styles', s))),
    );
    const { rows } = await discoverRules(model, index, {
      spec: spec!,
      styles,
      classNames: labels,
      cacheDir: join(dir, 'cache'),
    });
    const top = rows.slice(0, 6).map((r) => `${r.concept}->${r.className}`);
    t.diagnostic(
      `top of the ranking: ${rows
        .slice(0, 6)
        .map((r) => `${r.concept}->${r.className} ${r.drop.toFixed(0)}`)
        .join(', ')}`,
    );
    assert.ok(top.includes('water->boat'), top.join(', '));
    assert.ok(top.includes('road->car') || top.includes('road->motorcycle'), top.join(', '));
    for (const r of rows.slice(0, 3))
      assert.ok(r.drop >= 50, `${r.concept}->${r.className} ${r.drop}`);
  });

  it('`ruledit demo --json` reports every method and writes the edited model and the report', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ruledit-demo-cli-'));
    // The block is given: this checks what the demo writes, the selection is tested above.
    const out = await ruledit([
      'demo',
      '--out',
      dir,
      '--images',
      '6',
      '--steps',
      '20',
      '--layer',
      'res2b',
      '--rank',
      '1',
      '--json',
    ]);
    assert.equal(out.code, 0, out.stderr);
    const r = JSON.parse(out.stdout);
    assert.deepEqual(
      r.methods.map((m: { method: string }) => m.method),
      ['rewrite', 'finetune-local', 'finetune-global'],
    );
    assert.equal(r.classes.length, CLASSES.length);
    assert.ok(r.sticker.images > 0);
    assert.ok(existsSync(r.model));
    const html = await readFile(r.report, 'utf8');
    assert.match(html, /<svg/);
    assert.match(html, /data:image\/png;base64/);
    // The header is written from the numbers: what was edited, what it fixed and broke.
    assert.match(
      html,
      /Edited: block res2b of the built-in scene model, rewritten from one \w+ scene/,
    );
    assert.match(html, /Fixed: on \d+ test scenes .* top-1 [\d.]+% -&gt; [\d.]+%/);
    assert.match(
      html,
      /Broke: clean accuracy on ordinary scenes [\d.]+% -&gt; [\d.]+% \(drop -?[\d.]+ points\)/,
    );
    assert.doesNotMatch(html, /METHOD\.md s\.8|:<\/p>/, 'no transcript lines pointing at nothing');
    if (existsSync(DEFAULT_CHROMIUM)) {
      // In a real browser: every card shows a prediction that changed, every mark is in its plot.
      const page = await screenshotReport(r.report, join(dir, 'report.png'), { force: true });
      const cards = page.cards.filter((c) => c.before !== undefined);
      assert.ok(cards.length >= 1, 'cards of fixed or broken scenes');
      for (const c of cards) assert.notEqual(c.after?.replace(/ \(.*\)$/, ''), c.before, c.caption);
      assert.ok(page.charts.length >= 2);
      for (const c of page.charts) {
        assert.ok(c.marks > 0, `${c.label}: no marks`);
        assert.deepEqual(c.outside, [], `${c.label}: marks outside the plot`);
      }
    }
    const again = await ruledit(['demo', '--out', dir, '--images', '6']);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /already holds a demo/);
  });
});
