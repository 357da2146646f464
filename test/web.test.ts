// The web editor end to end in headless Chromium (issue 7, "Must show"; issue 11): load an image,
// paint a mask with the mouse, pick a style, run the edit on the built-in model and see the top-5
// on x' change and the safety guard's figures; the page must stay usable while the job runs.
// Leaves a screenshot for a person to look at.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { Browser, Page } from 'playwright-core';
import { CHROMIUM_ARGS, DEFAULT_CHROMIUM } from '../src/report/screenshot.ts';
import { createServer } from '../src/server/app.ts';
import { ensureWebBuild } from '../src/server/web.ts';
import { BUILTIN_MODEL } from '../src/synth/builtin.ts';

const MODEL = process.env.RULEDIT_SERVE_TEST_MODEL ?? BUILTIN_MODEL;
const OUT = join(tmpdir(), 'ruledit-test-web');
const skip = existsSync(DEFAULT_CHROMIUM)
  ? false
  : `${DEFAULT_CHROMIUM} absent: the browser test of the web editor is skipped`;

describe('web editor in Chromium', { skip }, () => {
  let app: FastifyInstance;
  let browser: Browser;
  let page: Page;
  let url: string;

  before(async () => {
    const webRoot = await ensureWebBuild();
    const server = await createServer({ modelPath: MODEL, builtin: true, data: [], webRoot });
    app = server.app;
    await app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/?token=${server.token}`;
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: DEFAULT_CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
  });

  after(async () => {
    await browser?.close();
    await app?.close();
  });

  it("paints a mask, picks a texture, edits, and shows the prediction on x' change", async () => {
    const errors: string[] = [];
    const external: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('request', (r) => {
      if (!r.url().startsWith(url.slice(0, url.indexOf('/?'))) && !r.url().startsWith('data:'))
        external.push(r.url());
    });
    await page.goto(url);
    await page.waitForFunction(() => document.getElementById('status')?.textContent === 'ready');

    // Load a sample scene (a car on a road) and paint over the road's lower half with the brush.
    await page.selectOption('#sample', { label: 'sample: car on road' });
    await page.waitForFunction(() => document.querySelectorAll('#top-x li').length === 5);
    const box = (await page.locator('#mask').boundingBox())!;
    const drag = async (fy: number, x0: number, x1: number) => {
      await page.mouse.move(box.x + box.width * x0, box.y + box.height * fy);
      await page.mouse.down();
      await page.mouse.move(box.x + box.width * x1, box.y + box.height * fy, { steps: 12 });
      await page.mouse.up();
    };
    // The road beside the car, then all of it below the car.
    for (const fy of [0.42, 0.5, 0.58]) {
      await drag(fy, 0.02, 0.28);
      await drag(fy, 0.82, 0.98);
    }
    for (const fy of [0.66, 0.74, 0.82, 0.9, 0.97]) await drag(fy, 0.02, 0.98);
    const painted = await page.evaluate(() => {
      const c = document.getElementById('mask') as HTMLCanvasElement;
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < d.length; i += 4) if (d[i]) n++;
      return n / (c.width * c.height);
    });
    assert.ok(
      painted > 0.35 && painted < 0.65,
      `the drags painted ${(painted * 100).toFixed(0)}% of the canvas`,
    );

    // Before running, the page says which block auto edits and how much of its key grid is painted.
    assert.match(
      await page.locator('#block-info').innerText(),
      /^auto edits \S+ .*key grid \d+x\d+: the mask touches \d+ of its \d+ cells/,
    );

    // Pick the snow style: the preview of x' and its top-5 appear, and one exemplar per snow image.
    await page.click('#styles button[data-style="snow"]');
    await page.waitForFunction(() => document.querySelectorAll('#top-xp li').length === 5);
    const xPrimeBefore = await page.locator('#top-xp').innerText();
    const topXBefore = await page.locator('#top-x').textContent();
    assert.equal(await page.locator('#exemplars figure').count(), 4, 'all four snow images');

    // Where the rule applies, before editing: the snowy-road test scenes match above the
    // ordinary ones (half of the images searched), each with its heat map.
    await page.click('#match');
    await page.waitForFunction(
      () => document.querySelectorAll('#matches figure').length === 12,
      undefined,
      {
        timeout: 30_000,
      },
    );
    const folders = await page.$$eval('#matches figure', (fs) =>
      fs.map((f) => (f as HTMLElement).dataset.folder),
    );
    const fromTest = folders.filter((f) => f === 'test').length;
    assert.ok(
      fromTest >= 10,
      `${fromTest} of the 12 best matches are snowy-road test scenes (50% by chance)`,
    );
    assert.match(
      await page.locator('#match-info').innerText(),
      /keys on a \d+x\d+ grid: \d+ of the 12 best matches are from the test folder .*50% of the images searched/,
    );
    assert.equal(
      await page.locator('#matches img.overlay').count(),
      12,
      'a heat map on every image',
    );

    await page.click('#run');
    await page.waitForFunction(() =>
      /running/.test(document.getElementById('job')!.textContent ?? ''),
    );
    // While the edit runs, the server answers and the page reacts to input.
    const during = await page.evaluate(async () => {
      const token = new URLSearchParams(location.search).get('token')!;
      // Read first: the job is known to be running when the requests below are made.
      const job = document.getElementById('job')!.textContent;
      const t0 = performance.now();
      const ok = (await fetch('/api/health', { headers: { 'x-ruledit-token': token } })).ok;
      (document.querySelector('input[value=eraser]') as HTMLInputElement).click();
      return {
        ok,
        ms: performance.now() - t0,
        job,
        eraser: (document.querySelector('input[value=eraser]') as HTMLInputElement).checked,
      };
    });
    assert.ok(during.ok && during.eraser, JSON.stringify(during));
    assert.ok(during.ms < 1000, `health took ${during.ms} ms during the job`);
    assert.match(during.job ?? '', /running|queued/, 'the job was still running during the check');

    await page.waitForFunction(() => !document.getElementById('result')!.hidden, undefined, {
      timeout: 45_000,
    });
    const before = await page.locator('#xp-before').innerText();
    const afterEdit = await page.locator('#xp-after').innerText();
    assert.equal(before, xPrimeBefore, 'the "before" column is the preview of the original model');
    assert.notEqual(afterEdit, before, "top-5 on x' changed");
    const top1 = (t: string) => t.split('\n')[0];
    const label = (t: string) => top1(t).replace(/ [\d.]+%$/, '');
    console.log(`x' top-1: ${top1(before)} -> ${top1(afterEdit)}`);
    // On the built-in model the snowy road makes the car something else; the edit brings it back.
    assert.notEqual(label(afterEdit), label(before), "the top-1 class on x' changed");
    assert.equal(label(afterEdit), 'car');
    assert.match(await page.locator('#summary').innerText(), /clean accuracy/i);
    // The matched images that changed prediction with the edit are marked as such.
    await page.waitForFunction(() =>
      /^since matching: \d+ of the 12 changed prediction$/.test(
        document.getElementById('match-changes')!.textContent ?? '',
      ),
    );
    const changed = await page.locator('#matches figure.changed').count();
    console.log(`matched images whose prediction changed: ${changed} of 12`);
    assert.ok(changed >= 1, 'the edit changed the prediction of some snowy-road matches');
    assert.match(
      await page.locator('#matches figure.changed .pred').first().innerText(),
      /^\S.* → \S/,
    );
    // The safety guard's verdict: the estimated drop against the budget, flips, strength kept.
    const guard = await page.locator('#guard').innerText();
    assert.match(guard, /estimated clean drop [\d.]+ points \(budget 0\.25; /);
    assert.match(
      guard,
      /held-out images changed top-1 \([\d.]+%\), mean KL .*(Strength kept|Backed off to [\d.]+ of the solved change: estimated clean drop [\d.]+ points at full strength, budget 0\.25)/,
    );
    assert.equal(await page.locator('#guard button').innerText(), 'undo this edit');
    assert.ok(
      await page.locator('#guard button').isVisible(),
      "the guard's figures come with an undo",
    );
    assert.equal(await page.locator('#per-class tr').count(), 11, 'header + 10 classes');
    assert.match(await page.locator('#history').innerText(), /rewrite/);

    // One click compares the rewrite with the three baselines on the same exemplar.
    await page.click('#compare');
    await page.waitForFunction(() => !document.getElementById('comparison')!.hidden, undefined, {
      timeout: 45_000,
    });
    const methods = await page.locator('#comparison tr td:first-child').allInnerTexts();
    assert.deepEqual(methods, ['rewrite', 'finetune-local', 'finetune-global', 'retrain-last']);

    await mkdir(OUT, { recursive: true });
    await page.screenshot({ path: join(OUT, 'editor.png'), fullPage: true });

    // After the edit, the top-5 on x is the current model's (asked for again), not the old one's.
    await page.waitForFunction(
      (old) => document.getElementById('top-x')!.textContent !== old,
      topXBefore,
    );
    // The mask's opacity follows its control; fine-tuning's label sits with fine-tuning.
    await page.locator('#mask-opacity').fill('0.3');
    assert.equal(await page.$eval('#mask', (c) => (c as HTMLElement).style.opacity), '0.3');
    assert.match(
      await page.locator('fieldset.ft legend').innerText(),
      /fine-tuning.*needs no label/,
    );
    // No horizontal scroll from 900 px up, with every result on the page.
    for (const width of [900, 1280]) {
      await page.setViewportSize({ width, height: 1000 });
      const { scroll, client } = await page.evaluate(() => ({
        scroll: document.documentElement.scrollWidth,
        client: document.documentElement.clientWidth,
      }));
      assert.ok(
        scroll <= client,
        `at ${width} px the page is ${scroll} px wide (window ${client})`,
      );
      await page.screenshot({ path: join(OUT, `editor-${width}.png`), fullPage: true });
    }
    await page.setViewportSize({ width: 1400, height: 1100 });

    // Undo: the history shows the edit as undone.
    await page.click('#undo');
    await page.waitForFunction(() =>
      /undone/.test(document.getElementById('history')!.textContent ?? ''),
    );
    assert.deepEqual(errors, []);
    assert.deepEqual(external, [], 'the page fetched nothing from outside the server');
  });
});
