import { VERSION } from '../version.js';
import {
  discoveryHeatmapSpec,
  methodsBarSpec,
  renderChart,
  tableBarSpec,
  tradeoffScatterSpec,
} from './charts.js';
import { rankDiscovery } from './csv.js';
import { escapeHtml, formatCell, formatNumber, isMissing, NA } from './format.js';
import { imageInfo, type ImageInfo } from './images.js';
import { STYLE } from './style.js';
import {
  MEASURES,
  type DiscoveryCell,
  type MethodResult,
  type ReportData,
  type ReportExample,
  type ReportTable,
} from './types.js';

/** Rows of the ranked rule-discovery table in the HTML (the CSV keeps them all). */
export const DISCOVERY_ROWS = 50;

// Example images are shown with their long side near this many CSS pixels: small images are
// enlarged by a whole factor (pixelated, so 64x64 inputs stay crisp), large ones shrunk.
const TARGET_SIDE = 224;

export interface HtmlOptions {
  /** Companion files (JSON, CSV) to list at the bottom, relative to the HTML file. */
  files?: string[];
}

/**
 * The whole report as one self-contained HTML document: images as data: URIs, charts as inline
 * SVG, styles inline, no script; a Content-Security-Policy forbids every network load, so the file
 * looks the same offline as online. All text from the data is escaped.
 */
export async function renderHtml(data: ReportData, options: HtmlOptions = {}): Promise<string> {
  const e = escapeHtml;
  const parts: string[] = [];
  parts.push(`<header><h1>${e(data.title)}</h1>`);
  const meta = [
    data.created && `created ${e(data.created)}`,
    `ruledit ${e(VERSION)} (the method: docs/method.md in the package)`,
  ];
  parts.push(`<p class="meta">${meta.filter(Boolean).join(' · ')}</p>`);
  for (const p of data.summary ?? []) parts.push(`<p class="summary">${e(p)}</p>`);
  parts.push('</header>');
  if (data.examples?.length) parts.push(await examplesSection(data.examples));
  for (const [i, t] of (data.tables ?? []).entries()) parts.push(await tableSection(t, i));
  if (data.methods?.length) parts.push(await methodsSection(data.methods));
  if (data.discovery?.length) parts.push(await discoverySection(data.discovery));
  if (options.files?.length) {
    parts.push(
      `<footer>Data behind this report: ${options.files.map((f) => `<code>${e(f)}</code>`).join(', ')}</footer>`,
    );
  }
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="generator" content="ruledit ${e(VERSION)}">
<title>${e(data.title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
${parts.join('\n')}
</main>
</body>
</html>
`;
}

async function examplesSection(examples: ReportExample[]): Promise<string> {
  const cards = await Promise.all(examples.map(exampleCard));
  return `<section id="examples"><h2>Examples</h2>\n<div class="examples">\n${cards.join('\n')}\n</div></section>`;
}

async function exampleCard(ex: ReportExample, i: number): Promise<string> {
  const e = escapeHtml;
  const where = (what: string) => `example ${i + 1} ('${ex.caption}'): ${what} image`;
  const panels: string[] = [];
  for (const [what, bytes] of [
    ['original', ex.original],
    ['mask', ex.mask],
    ['transformed', ex.transformed],
  ] as const) {
    if (!bytes) continue;
    const info = await imageInfo(bytes, where(what));
    const label = what === 'mask' ? (ex.maskLabel ?? what) : what;
    panels.push(
      `<div class="panel panel-${what}">${img(bytes, info, `${ex.caption}: ${label}`)}<span>${e(label)}</span></div>`,
    );
  }
  const preds: string[] = [];
  if (ex.before !== undefined) preds.push(`<dt>before</dt><dd>${e(ex.before)}</dd>`);
  if (ex.after !== undefined) preds.push(`<dt>after</dt><dd>${e(ex.after)}</dd>`);
  return `<figure class="example"><div class="panels">${panels.join('')}</div><figcaption><p>${e(ex.caption)}</p>${
    preds.length ? `<dl class="pred">${preds.join('')}</dl>` : ''
  }</figcaption></figure>`;
}

function img(bytes: Buffer, info: ImageInfo, alt: string): string {
  const long = Math.max(info.width, info.height);
  const factor =
    long < TARGET_SIDE ? Math.max(1, Math.floor(TARGET_SIDE / long)) : TARGET_SIDE / long;
  const [w, h] = [Math.round(info.width * factor), Math.round(info.height * factor)];
  const cls = factor > 1 ? ' class="pixelated"' : '';
  return `<img${cls} src="data:${info.mime};base64,${bytes.toString('base64')}" width="${w}" height="${h}" alt="${escapeHtml(alt)}">`;
}

async function tableSection(t: ReportTable, i: number): Promise<string> {
  const id = `table-${i + 1}`;
  const chart = t.chart
    ? `<figure class="chart" id="chart-${id}">${await renderChart(tableBarSpec(t), t.title, `table${i + 1}`)}</figure>\n`
    : '';
  return `<section class="table-section" id="${id}"><h2>${escapeHtml(t.title)}</h2>\n${chart}${htmlTable(t.columns, t.rows)}${note(t.note)}</section>`;
}

function note(text?: string): string {
  return text ? `<p class="note">${escapeHtml(text)}</p>` : '';
}

/** Numbers are right-aligned; n/a is greyed so it cannot be read as a measured value. */
export function htmlTable(
  columns: string[],
  rows: (string | number | null | undefined)[][],
  digits = 2,
): string {
  const head = columns.map((c) => `<th>${escapeHtml(c)}</th>`).join('');
  const body = rows
    .map((row) => {
      const cells = row.map((v) => {
        const text = formatCell(v, digits);
        const numeric = typeof v === 'number' || /^-?\d+(\.\d+)?%?$/.test(text);
        const cls = text === NA ? 'na' : numeric ? 'num' : '';
        return `<td${cls ? ` class="${cls}"` : ''}>${escapeHtml(text)}</td>`;
      });
      return `<tr>${cells.join('')}</tr>`;
    })
    .join('\n');
  return `<div class="table-wrap"><table>\n<thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody>\n</table></div>`;
}

async function methodsSection(methods: MethodResult[]): Promise<string> {
  const bars = await renderChart(methodsBarSpec(methods), 'Errors corrected per method', 'bars');
  const scatter = await renderChart(
    tradeoffScatterSpec(methods),
    'Errors corrected vs clean accuracy drop',
    'scatter',
  );
  const hasCase = methods.some((m) => m.case !== undefined);
  const columns = [
    'method',
    ...(hasCase ? ['case'] : []),
    ...MEASURES.map((k) => `${k.short} (%)`),
    'clean drop (points)',
  ];
  const rows = methods.map((m) => [
    m.method,
    ...(hasCase ? [m.case ?? ''] : []),
    ...MEASURES.map((k) => roundOrNa(m[k.key], 1)),
    roundOrNa(m.cleanDrop, 2),
  ]);
  return `<section id="methods"><h2>Editing methods</h2>
<div class="charts"><figure class="chart" id="chart-bars">${bars}</figure><figure class="chart" id="chart-scatter">${scatter}</figure></div>
${htmlTable(columns, rows)}
<p class="note">Columns: errors corrected (%) on the target class or the other classes, transformed with the same style image or held-out images of the style; clean drop = accuracy lost on the ordinary test set. Errors corrected = 100 (E<sub>pre</sub> - E<sub>post</sub>) / E<sub>pre</sub> over test images the model classified correctly before the transformation (floored at -100); n/a means there were no errors to fix.</p></section>`;
}

/** One precision per column (toFixed, unlike formatNumber's bare integers); n/a stays n/a. */
function roundOrNa(v: number | null, digits: number): string {
  if (isMissing(v)) return NA;
  return Number.isFinite(v) ? v.toFixed(digits) : formatNumber(v);
}

async function discoverySection(cells: DiscoveryCell[]): Promise<string> {
  const heat = await renderChart(
    discoveryHeatmapSpec(cells),
    'Rule discovery heat map: accuracy drop per concept and class',
    'heatmap',
  );
  const ranked = rankDiscovery(cells);
  const shown = ranked.slice(0, DISCOVERY_ROWS);
  const rows = shown.map((c, i) => [i + 1, c.concept, c.className, roundOrNa(c.drop, 1), c.images]);
  const more =
    ranked.length > shown.length
      ? `<p class="note">The ${shown.length} largest drops of ${ranked.length}; discovery.csv holds them all.</p>`
      : '';
  return `<section id="discovery"><h2>Rule discovery</h2>
<figure class="chart" id="chart-heatmap">${heat}</figure>
${htmlTable(['rank', 'concept', 'class', 'accuracy drop (points)', 'images'], rows)}${more}</section>`;
}
