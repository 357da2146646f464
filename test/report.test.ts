import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { RuleditError } from '../src/errors.ts';
import type { TopLevelSpec } from 'vega-lite';
import {
  fitDomain,
  methodsBarSpec,
  renderChart,
  tradeoffScatterSpec,
} from '../src/report/charts.ts';
import { discoveryCsv, methodsCsv, toCsv } from '../src/report/csv.ts';
import { escapeHtml, formatNumber } from '../src/report/format.ts';
import { renderHtml } from '../src/report/html.ts';
import { inputToPng, maskToPng } from '../src/report/images.ts';
import { parseReport, readReport, reportToJson } from '../src/report/json.ts';
import { DEFAULT_CHROMIUM, screenshotReport } from '../src/report/screenshot.ts';
import type { ReportData } from '../src/report/types.ts';
import { writeReport } from '../src/report/write.ts';
import { ruledit } from './fixtures/cli.ts';

const code = (c: string) => (e: unknown) => {
  assert.ok(e instanceof RuleditError, `expected a RuleditError, got ${String(e)}`);
  assert.equal(e.code, c, e.message);
  return true;
};

/** A 64x64 scene: a colour gradient with a darker square in the middle (the "concept"). */
async function scene(fill?: [number, number, number]): Promise<Buffer> {
  const n = 64;
  const px = Buffer.alloc(n * n * 3);
  for (let y = 0; y < n; y++)
    for (let x = 0; x < n; x++) {
      const inside = x >= 16 && x < 48 && y >= 16 && y < 48;
      const rgb: number[] =
        inside && fill ? fill : inside ? [60, 40 + x, 30 + y] : [x * 4, y * 4, 255 - x * 2];
      px.set(rgb, (y * n + x) * 3);
    }
  return sharp(px, { raw: { width: n, height: n, channels: 3 } })
    .png()
    .toBuffer();
}

async function squareMask(): Promise<Buffer> {
  const m = new Float32Array(64 * 64);
  for (let y = 16; y < 48; y++) for (let x = 16; x < 48; x++) m[y * 64 + x] = 1;
  return maskToPng(m, [64, 64]);
}

const METHODS = [
  {
    method: 'rewrite',
    case: 'road/snow/bus',
    targetSame: 80,
    targetHeldout: 60,
    otherSame: 50,
    otherHeldout: 40,
    cleanDrop: 0.1,
  },
  {
    method: 'rewrite',
    case: 'road/snow/van',
    targetSame: 70,
    targetHeldout: null,
    otherSame: 30,
    otherHeldout: 20,
    cleanDrop: 0.2,
  },
  {
    method: 'finetune-local',
    case: 'road/snow/bus',
    targetSame: 90,
    targetHeldout: 40,
    otherSame: -20,
    otherHeldout: NaN,
    cleanDrop: 0.05,
  },
  {
    method: 'finetune-local',
    case: 'road/snow/van',
    targetSame: 85,
    targetHeldout: 35,
    otherSame: -35,
    otherHeldout: null,
    cleanDrop: 0.08,
  },
  {
    method: 'finetune-global',
    case: 'road/snow/bus',
    targetSame: 95,
    targetHeldout: 70,
    otherSame: 10,
    otherHeldout: 5,
    cleanDrop: 1.5,
  },
];
// Bars: 4 measures x 3 methods, less finetune-local's otherHeldout (n/a in both cases).
const BARS = 11;

const CONCEPTS = ['person', 'grass', 'road'];
const CLASSES = ['golden retriever', 'soccer ball', 'school bus', 'tench'];
const DISCOVERY = CONCEPTS.flatMap((concept, i) =>
  CLASSES.map((className, j) => ({
    concept,
    className,
    drop: (i + 1) * (j - 1) * 3.5,
    images: 5 + i + j,
  })),
);

let data: ReportData;
let dir: string;
const screenshotDir = join(tmpdir(), 'ruledit-test-report');

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ruledit-report-'));
  data = {
    title: 'Snowy roads <test> & friends',
    created: '2024-01-02T03:04:05.000Z',
    summary: ['One exemplar, road -> snow.', 'Top-1 rose from 57.1% to 66.7%.'],
    examples: [
      {
        caption: 'street, road -> snow',
        original: await scene(),
        mask: await squareMask(),
        transformed: await scene([235, 240, 250]),
        before: 'school bus 91%',
        after: 'school bus 95%',
      },
    ],
    tables: [
      {
        title: 'Per-class top-1',
        columns: ['class', 'images', 'before (%)', 'after (%)'],
        rows: [
          ['fire engine, fire truck', 12, 50, 58.333333],
          ['school "yellow" bus', 9, null, NaN],
        ],
        note: 'snow-dev',
        chart: { label: 'class', values: ['before (%)', 'after (%)'], axis: 'top-1 (%)' },
      },
    ],
    methods: METHODS,
    discovery: DISCOVERY,
  };
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The inline SVG inside <figure id="ID">. */
function figureSvg(html: string, id: string): string {
  const m = html.match(
    new RegExp(`<figure class="chart" id="${id}">(<svg[\\s\\S]*?</svg>)</figure>`),
  );
  assert.ok(m, `no chart ${id} in the HTML`);
  return m[1];
}

const count = (text: string, re: RegExp) => (text.match(re) ?? []).length;

describe('report CSV', () => {
  it('quotes commas, quotes, line breaks and edge spaces (RFC 4180), numbers at full precision', () => {
    const csv = toCsv(
      ['name', 'value'],
      [
        ['a,b', 1.25],
        ['say "hi"', -3],
        ['two\nlines', 1 / 3],
        [' padded', 0],
        ['plain', 1e-7],
      ],
    );
    assert.equal(
      csv,
      'name,value\n"a,b",1.25\n"say ""hi""",-3\n"two\nlines",0.3333333333333333\n" padded",0\nplain,1e-7\n',
    );
  });

  it("writes NaN and null as 'n/a', never 0 or empty; 0 stays 0", () => {
    const csv = methodsCsv([
      {
        method: 'm',
        targetSame: NaN,
        targetHeldout: null,
        otherSame: 0,
        otherHeldout: 12.5,
        cleanDrop: NaN,
      },
    ]);
    assert.equal(
      csv,
      'method,case,targetSame,targetHeldout,otherSame,otherHeldout,cleanDrop\nm,,n/a,n/a,0,12.5,n/a\n',
    );
    assert.equal(formatNumber(NaN), 'n/a');
    assert.equal(formatNumber(null), 'n/a');
    assert.equal(formatNumber(0), '0');
  });

  it('ranks rule discovery by drop, largest first', () => {
    const lines = discoveryCsv(DISCOVERY).trim().split('\n');
    assert.equal(lines[0], 'concept,class,drop,images');
    assert.equal(lines[1], 'road,tench,21,10');
    assert.equal(lines.length, DISCOVERY.length + 1);
    const drops = lines.slice(1).map((l) => Number(l.split(',').at(-2)));
    assert.deepEqual(
      drops,
      [...drops].sort((a, b) => b - a),
    );
  });
});

describe('report charts', () => {
  it('fit their value axis to the data, with zero and a margin past every mark', () => {
    // On a 260 px plot a bar's label takes 20 px: 20 / (260 - 40) of the span beyond each end.
    const near = (got: number[], want: number[]) =>
      assert.ok(
        got.every((g, i) => Math.abs(g - want[i]) < 1e-9),
        `${got} vs ${want}`,
      );
    near(fitDomain([10, 40, null], 260), [0, 45]);
    near(fitDomain([100, -30, NaN], 260), [-30 - 130 / 11, 100 + 130 / 11]);
    near(fitDomain([-100, 100], 260), [-100 - 200 / 11, 100 + 200 / 11]);
    const methods = [
      {
        method: 'rewrite',
        targetSame: 100,
        targetHeldout: 80,
        otherSame: 60,
        otherHeldout: 50,
        cleanDrop: 0,
      },
      {
        method: 'finetune-local',
        targetSame: 100,
        targetHeldout: -30,
        otherSame: -10,
        otherHeldout: null,
        cleanDrop: 0.5,
      },
    ];
    const axis = (spec: unknown, path: (s: any) => any) => path(spec).scale.domain as number[];
    const bars = axis(methodsBarSpec(methods), (s) => s.layer[0].encoding.y);
    assert.ok(bars[0] < -30 && bars[1] > 100, `bar axis ${bars}`);
    const points = axis(tradeoffScatterSpec(methods), (s) => s.layer[0].encoding.y);
    // Means per point: rewrite 72.5, finetune-local 20; the axis starts at 0 and stops past 72.5.
    assert.ok(points[0] === 0 && points[1] > 72.5 && points[1] < 100, `scatter axis ${points}`);
  });
});

describe('report HTML', () => {
  let html: string;
  before(async () => {
    html = await renderHtml(data);
  });

  it('is self-contained: no URL, script, stylesheet link or non-data: source', () => {
    assert.doesNotMatch(html, /https?:\/\//);
    assert.doesNotMatch(html, /<script|<link|<iframe|@import|url\((?!#)/i);
    const sources = [...html.matchAll(/\b(?:src|href)="([^"]*)"/g)].map((m) => m[1]);
    assert.ok(sources.length >= 3);
    for (const s of sources) assert.match(s, /^(data:image\/png;base64,|#)/);
    assert.match(html, /Content-Security-Policy" content="default-src 'none'/);
  });

  it('inlines the three images, enlarged 64 -> 192 px with pixelated scaling', () => {
    const imgs = [...html.matchAll(/<img[^>]*>/g)].map((m) => m[0]);
    assert.equal(imgs.length, 3);
    for (const tag of imgs) {
      assert.match(tag, /class="pixelated"/);
      assert.match(tag, /width="192" height="192"/);
    }
    assert.ok(html.includes(data.examples![0].original.toString('base64')));
    assert.ok(html.includes(data.examples![0].mask!.toString('base64')));
    assert.match(html, /image-rendering: pixelated/);
    assert.match(
      html,
      /<dt>before<\/dt><dd>school bus 91%<\/dd><dt>after<\/dt><dd>school bus 95%<\/dd>/,
    );
  });

  it('draws one bar per available errors-corrected number and an n/a label for the missing one', () => {
    const svg = figureSvg(html, 'chart-bars');
    assert.equal(count(svg, /aria-roledescription="bar"/g), BARS);
    // Mean over cases: rewrite's target held-out is 60 (the null case does not count as 0).
    assert.match(
      svg,
      /aria-label="method: rewrite; errors corrected \(%\): 60; measure: target class, held-out styles;/,
    );
    assert.match(
      svg,
      /aria-label="method: rewrite; errors corrected \(%\): 75; measure: target class, same style;/,
    );
    assert.equal(count(svg, />n\/a<\/text>/g), 1);
  });

  it("draws a table's chart: one bar per numeric cell, n/a for the others", () => {
    const svg = figureSvg(html, 'chart-table-1');
    assert.equal(count(svg, /aria-roledescription="bar"/g), 2);
    assert.match(
      svg,
      /aria-label="group: fire engine, fire truck; top-1 \(%\): 58\.333333; series: after \(%\)/,
    );
    assert.equal(count(svg, />n\/a<\/text>/g), 2);
  });

  it('names the table and column when a table chart uses a missing column', async () => {
    const table = { ...data.tables![0], chart: { label: 'class', values: ['later (%)'] } };
    await assert.rejects(
      renderHtml({ title: 't', tables: [table] }),
      (e) =>
        code('bad-report')(e) &&
        /table 'Per-class top-1'.*'later \(%\)'/.test((e as Error).message),
    );
  });

  it('plots one scatter point per method and case', () => {
    const svg = figureSvg(html, 'chart-scatter');
    assert.equal(count(svg, /aria-roledescription="point"/g), METHODS.length);
    assert.match(svg, /case: road\/snow\/van/);
  });

  it('fills one heat-map cell per concept and class, red for the largest drop', () => {
    const svg = figureSvg(html, 'chart-heatmap');
    const cells = [...svg.matchAll(/aria-roledescription="rect mark" d="[^"]*" fill="([^"]+)"/g)];
    assert.equal(cells.length, CONCEPTS.length * CLASSES.length);
    // The largest drop (road x tench, +21) is reddest, the largest gain (road x retriever) bluest.
    const rgb = (label: string) => {
      const m = svg.match(
        new RegExp(
          `aria-label="class: ${label}[^"]*" role="graphics-symbol" aria-roledescription="rect mark" d="[^"]*" fill="rgb\\((\\d+), (\\d+), (\\d+)\\)"`,
        ),
      );
      assert.ok(m, `no cell ${label}`);
      return m.slice(1).map(Number);
    };
    const hot = rgb('tench; concept: road');
    const cold = rgb('golden retriever; concept: road');
    assert.ok(hot[0] > hot[2] + 80, `tench/road should be red, got ${hot}`);
    assert.ok(cold[2] > cold[0] + 80, `retriever/road should be blue, got ${cold}`);
  });

  it('gives each chart its own SVG ids', () => {
    const ids = [...html.matchAll(/\bid="([^"]+)"/g)].map((m) => m[1]);
    assert.equal(new Set(ids).size, ids.length, `duplicate ids: ${ids}`);
    for (const m of html.matchAll(/url\(#([^)]+)\)/g)) assert.ok(ids.includes(m[1]), m[1]);
  });

  it('shows n/a (greyed) in tables, never 0', () => {
    assert.match(html, /<td class="na">n\/a<\/td>/);
    // finetune-local, case van: other classes held-out is null.
    assert.match(
      html,
      /<td>finetune-local<\/td><td>road\/snow\/van<\/td><td class="num">85\.0<\/td><td class="num">35\.0<\/td><td class="num">-35\.0<\/td><td class="na">n\/a<\/td>/,
    );
  });

  it('escapes every text from the data', async () => {
    const evil = '<script>alert("x")</script>&';
    const page = await renderHtml({
      title: evil,
      summary: [evil],
      examples: [
        { caption: evil, original: data.examples![0].original, before: evil, after: '<b>' },
      ],
      tables: [{ title: evil, columns: [evil], rows: [[evil]], note: evil }],
      methods: [
        {
          method: evil,
          case: evil,
          targetSame: 1,
          targetHeldout: 2,
          otherSame: 3,
          otherHeldout: 4,
          cleanDrop: 0,
        },
      ],
      discovery: [{ concept: evil, className: '<img src=x onerror=alert(1)>', drop: 5, images: 1 }],
    });
    assert.doesNotMatch(page, /<script|<b>|<img src=x/);
    assert.ok(count(page, /&lt;script&gt;alert\(&quot;x&quot;\)&lt;\/script&gt;&amp;/g) >= 8);
    assert.equal(escapeHtml(`a<b>&"c'`), 'a&lt;b&gt;&amp;&quot;c&#39;');
  });

  it('rejects example bytes that are not an image, naming the example', async () => {
    await assert.rejects(
      renderHtml({ title: 't', examples: [{ caption: 'broken', original: Buffer.from('nope') }] }),
      (e) =>
        code('bad-report')(e) &&
        /example 1 \('broken'\): original image/.test((e as Error).message),
    );
  });
});

describe('report files', () => {
  it('writes HTML, JSON and CSVs, and the JSON reads back to the same data', async () => {
    const out = join(dir, 'one');
    const w = await writeReport(data, out);
    assert.equal(w.html, join(out, 'report.html'));
    assert.deepEqual(
      w.csv.map((f) => f.slice(out.length + 1)),
      ['methods.csv', 'discovery.csv', 'table-1-per-class-top-1.csv'],
    );
    assert.deepEqual((await readdir(out)).sort(), [
      'discovery.csv',
      'methods.csv',
      'report.html',
      'report.json',
      'table-1-per-class-top-1.csv',
    ]);
    assert.equal(
      await readFile(w.csv[2], 'utf8'),
      'class,images,before (%),after (%)\n"fire engine, fire truck",12,50,58.333333\n"school ""yellow"" bus",9,n/a,n/a\n',
    );
    const back = await readReport(w.json);
    // NaN goes through JSON as null; both mean "nothing to measure".
    const nanToNull = (d: ReportData) =>
      JSON.parse(JSON.stringify(d, (_, v) => (Buffer.isBuffer(v) ? v.toString('base64') : v)));
    assert.deepEqual(nanToNull(back), nanToNull(data));
    assert.ok(back.examples![0].original.equals(data.examples![0].original));
    assert.ok(Number.isNaN(back.methods![2].otherHeldout ?? NaN));
    assert.equal(
      await readFile(w.html, 'utf8'),
      await renderHtml(back, {
        files: ['report.json', 'methods.csv', 'discovery.csv', 'table-1-per-class-top-1.csv'],
      }),
    );
  });

  it('writes no header-only CSV, and names table files with whole words', async () => {
    const out = join(dir, 'tables-only');
    const w = await writeReport(
      {
        title: 't',
        tables: [
          {
            title: "Ranking by strongest match (1 = the exemplars' own)",
            columns: ['a'],
            rows: [[1]],
          },
        ],
      },
      out,
    );
    assert.deepEqual(
      w.csv.map((f) => f.slice(out.length + 1)),
      ['table-1-ranking-by-strongest-match-1-the.csv'],
    );
    assert.deepEqual((await readdir(out)).sort(), [
      'report.html',
      'report.json',
      'table-1-ranking-by-strongest-match-1-the.csv',
    ]);
  });

  it('refuses to overwrite a report without force, leaving it untouched and no temp files', async () => {
    const out = join(dir, 'two');
    const w = await writeReport(data, out);
    const before = await readFile(w.json, 'utf8');
    const mtime = (await stat(w.html)).mtimeMs;
    await assert.rejects(
      writeReport({ ...data, title: 'other' }, out),
      (e) => code('exists')(e) && /`force`/.test((e as Error).message),
    );
    assert.equal(await readFile(w.json, 'utf8'), before);
    assert.equal((await stat(w.html)).mtimeMs, mtime);
    await writeReport({ ...data, title: 'other' }, out, { force: true });
    assert.match(await readFile(w.html, 'utf8'), /<h1>other<\/h1>/);
    assert.deepEqual(
      (await readdir(out)).filter((f) => f.includes('.tmp-')),
      [],
    );
  });

  it('refuses to write over its own input and into a file', async () => {
    const out = join(dir, 'three');
    const w = await writeReport(data, out);
    await assert.rejects(
      writeReport(data, out, { force: true, protect: [w.json] }),
      code('same-as-input'),
    );
    await assert.rejects(writeReport(data, w.json), code('bad-output'));
  });

  it('rejects JSON that is not a report, naming the bad field', async () => {
    assert.throws(() => parseReport({ title: 'x' }, 'r.json'), code('bad-report'));
    const json = JSON.parse(reportToJson({ title: 't', methods: METHODS }));
    json.methods[1].cleanDrop = 'small';
    assert.throws(
      () => parseReport(json, 'r.json'),
      (e) =>
        code('bad-report')(e) &&
        /r\.json: methods\[1\]\.cleanDrop must be a number/.test((e as Error).message),
    );
  });

  it('turns model inputs and masks back into PNGs', async () => {
    const spec = {
      layout: 'NCHW' as const,
      size: [2, 2] as [number, number],
      cropFraction: 1,
      resize: 'bilinear' as const,
      mean: [0.5, 0.5, 0.5] as [number, number, number],
      std: [0.5, 0.5, 0.5] as [number, number, number],
    };
    // Red, green, blue, white in normalized NCHW.
    const x = Float32Array.from([1, -1, -1, 1, -1, 1, -1, 1, -1, -1, 1, 1]);
    const { data: px } = await sharp(await inputToPng(x, spec))
      .raw()
      .toBuffer({ resolveWithObject: true });
    assert.deepEqual([...px], [255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255]);
    const mask = await maskToPng(Float32Array.from([0, 1, 0.5, 0]), [2, 2]);
    const { data: m, info } = await sharp(mask).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual(
      [...m].filter((_, i) => i % info.channels === 0),
      [0, 255, 128, 0],
    );
  });
});

describe('ruledit report CLI', () => {
  it('re-renders a report.json into a new folder and refuses to overwrite (exit 2)', async () => {
    const src = await writeReport(data, join(dir, 'cli-src'));
    const out = join(dir, 'cli-out');
    const first = await ruledit(['report', src.json, '--out', out]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /wrote .*report\.html/);
    assert.equal(
      await readFile(join(out, 'report.html'), 'utf8'),
      await readFile(src.html, 'utf8'),
    );
    const again = await ruledit(['report', src.json, '--out', out]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /^ruledit: error: .*already holds a report.*--force/);
    const bad = join(dir, 'bad.json');
    await writeFile(bad, '{"format":"ruledit-report","version":1}');
    const worse = await ruledit(['report', bad, '--out', join(dir, 'cli-bad')]);
    assert.equal(worse.code, 2);
    assert.match(worse.stderr, /ruledit: error: .*bad\.json: title must be a string/);
  });
});

describe(
  'report in headless Chromium',
  { skip: !existsSync(DEFAULT_CHROMIUM) && `${DEFAULT_CHROMIUM} absent: browser check skipped` },
  () => {
    it('loads every image, draws every chart, asks for nothing external, and is not blank', async () => {
      const w = await writeReport(data, join(dir, 'browser'));
      await mkdir(screenshotDir, { recursive: true });
      const png = join(screenshotDir, 'report.png');
      const check = await screenshotReport(w.html, png, { force: true });
      assert.equal(check.images.length, 3);
      for (const i of check.images) {
        assert.ok(i.naturalWidth > 0, `image ${i.alt} did not load`);
        assert.equal(i.naturalWidth, 64);
        assert.equal(i.width, 192, `image ${i.alt} is not shown enlarged`);
      }
      assert.deepEqual(
        check.charts.map((c) => c.label),
        [
          'Per-class top-1',
          'Errors corrected per method',
          'Errors corrected vs clean accuracy drop',
          'Rule discovery heat map: accuracy drop per concept and class',
        ],
      );
      for (const c of check.charts) {
        assert.ok(c.width > 100 && c.height > 100, `${c.label} is ${c.width}x${c.height}`);
        assert.ok(c.marks > 0, `${c.label}: no marks`);
        assert.deepEqual(c.outside, [], `${c.label}: marks outside the plot`);
      }
      assert.deepEqual(check.external, []);
      assert.ok(check.screenshot.height > 900, `page height ${check.screenshot.height}`);
      assert.ok(
        check.screenshot.colours > 500,
        `only ${check.screenshot.colours} colours: blank page?`,
      );
      assert.ok(existsSync(png));
    });

    it('finds a mark drawn beyond its plot (a point past a fixed axis, as the old -100..100 charts had)', async () => {
      const spec: TopLevelSpec = {
        data: {
          values: [
            { x: 1, y: 120 },
            { x: 2, y: 5 },
          ],
        },
        mark: 'point',
        encoding: {
          x: { field: 'x', type: 'quantitative', scale: { domain: [0, 3] } },
          y: { field: 'y', type: 'quantitative', scale: { domain: [-100, 100] } },
        },
      };
      const file = join(dir, 'outside.html');
      await writeFile(
        file,
        `<!doctype html><figure class="chart">${await renderChart(spec, 'fixed axis', 'o')}</figure>`,
      );
      const check = await screenshotReport(file, join(screenshotDir, 'outside.png'), {
        force: true,
      });
      assert.equal(check.charts[0].marks, 2);
      assert.deepEqual(check.charts[0].outside, ['x: 1; y: 120']);
    });
  },
);
