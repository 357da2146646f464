// Charts are Vega-Lite specs compiled to Vega and rendered to SVG here in Node, so the HTML report
// needs no script, no CDN and no network to show them. Vega is imported on first use: loading it
// takes about half a second, which commands and library users that write no chart should not pay.
import type { TopLevelSpec } from 'vega-lite';
import { escapeHtml, isMissing, meanPresent } from './format.js';
import { RuleditError } from '../errors.js';
import { MEASURES, type DiscoveryCell, type MethodResult, type ReportTable } from './types.js';

const FONT = 'Helvetica, Arial, sans-serif';
const CONFIG = {
  font: FONT,
  background: 'white',
  view: { stroke: '#d0d5dd' },
  axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 600, gridColor: '#eceff3' },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 260 },
  title: { fontSize: 15, fontWeight: 600, anchor: 'start' as const, offset: 12 },
};

// Muted first, saturated second: in a before/after pair the "after" bar stands out.
const SERIES_COLOURS = ['#9ca3af', '#1f5fa8', '#c8611a', '#2e9e6a', '#8e5cc4', '#d4a017'];

// Target class in blues, other classes in oranges; dark = same style, light = held-out styles.
const MEASURE_COLOURS = ['#1f5fa8', '#8fb8e0', '#c8611a', '#f2b27a'];

/** Heat maps wider than this many classes keep the classes with the largest drops. */
export const HEATMAP_MAX_CLASSES = 40;

const SCATTER_HEIGHT = 280;

/** Room a bar's value label takes beyond the bar's end, in pixels (10 px text, 7 px off). */
const LABEL_PX = 20;

/**
 * A value axis that fits its data with room around it: zero always in view (bars grow from it),
 * and beyond the extremes a margin of at least 5% of `limit` (the scale of the measure: 100 for
 * percentages) and, on a plot `height` pixels tall, room for a bar's value label, so no mark or
 * label lies on or past the plot's edge (checked in a browser: report/screenshot.ts).
 */
export function fitDomain(
  values: (number | null)[],
  height: number,
  limit = 100,
): [number, number] {
  const present = values.filter((v): v is number => v !== null && Number.isFinite(v));
  const lo = Math.min(0, ...present);
  const hi = Math.max(0, ...present);
  const span = Math.max(hi - lo, 0.05 * limit);
  const margin = Math.max(0.05 * limit, (span * LABEL_PX) / (height - 2 * LABEL_PX));
  return [lo < 0 ? lo - margin : 0, hi + margin];
}

/** First-seen order, so charts list methods in the order the producer gave them. */
function unique(values: string[]): string[] {
  return [...new Set(values)];
}

/**
 * Grouped bars: per method, the four errors-corrected numbers (mean over its cases). A number that
 * is n/a for every case gets an 'n/a' label instead of a bar, so it cannot read as 0.
 */
export function methodsBarSpec(methods: MethodResult[]): TopLevelSpec {
  const names = unique(methods.map((m) => m.method));
  const values = names.flatMap((method) => {
    const rows = methods.filter((m) => m.method === method);
    return MEASURES.map((k) => {
      const v = meanPresent(rows.map((r) => r[k.key]));
      return { method, measure: k.label, value: Number.isNaN(v) ? null : v, cases: rows.length };
    });
  });
  const x = {
    field: 'method',
    type: 'nominal' as const,
    sort: names,
    title: null,
    axis: { labelAngle: 0, labelLimit: 140 },
  };
  const xOffset = { field: 'measure', sort: MEASURES.map((k) => k.label) };
  const height = 260;
  return {
    title: {
      text: 'Errors corrected per method',
      subtitle: 'percent of errors fixed; mean over cases; n/a = no errors to fix',
    },
    width: Math.max(320, names.length * 150),
    height,
    data: { values },
    encoding: { x, xOffset },
    layer: [
      {
        transform: [{ filter: 'datum.value != null' }],
        mark: { type: 'bar' },
        encoding: {
          y: {
            field: 'value',
            type: 'quantitative',
            title: 'errors corrected (%)',
            scale: {
              domain: fitDomain(
                values.map((v) => v.value),
                height,
              ),
              nice: false,
            },
          },
          color: {
            field: 'measure',
            type: 'nominal',
            title: 'errors corrected on',
            sort: MEASURES.map((k) => k.label),
            scale: { domain: MEASURES.map((k) => k.label), range: MEASURE_COLOURS },
            legend: { orient: 'bottom', columns: 2, titleLimit: 400, labelLimit: 300 },
          },
          tooltip: [
            { field: 'method' },
            { field: 'measure' },
            { field: 'value', format: '.1f' },
            { field: 'cases' },
          ],
        },
      },
      ...BAR_LABELS,
      { mark: { type: 'rule', color: '#374151' }, encoding: { y: { datum: 0 } } },
    ],
    config: CONFIG,
  } as TopLevelSpec;
}

/** Bar charts' labels: each bar's value above it (below when negative), 'n/a' where there is none. */
const BAR_LABELS = [
  {
    transform: [{ filter: 'datum.value != null' }],
    mark: { type: 'text', dy: { expr: 'datum.value < 0 ? 8 : -7' }, fontSize: 10 },
    encoding: {
      y: { field: 'value', type: 'quantitative' },
      text: { field: 'value', format: '.0f' },
    },
  },
  {
    transform: [{ filter: 'datum.value == null' }],
    mark: { type: 'text', dy: -7, fontSize: 10, fill: '#6b7280', fontStyle: 'italic' },
    encoding: { y: { datum: 0 }, text: { value: 'n/a' } },
  },
];

/**
 * A table drawn as grouped bars (ReportTable.chart): one group per row, one bar per value column;
 * a cell that is not a number gets an 'n/a' label instead of a bar.
 */
export function tableBarSpec(table: ReportTable): TopLevelSpec {
  const chart = table.chart!;
  const column = (name: string) => {
    const i = table.columns.indexOf(name);
    if (i < 0)
      throw new RuleditError(
        'bad-report',
        `table '${table.title}': its chart uses column '${name}', which is not one of ${table.columns.join(', ')}`,
      );
    return i;
  };
  const label = column(chart.label);
  const series = chart.values.map((name) => ({ name, i: column(name) }));
  const groups = unique(table.rows.map((r) => String(r[label] ?? '')));
  const values = table.rows.flatMap((r) =>
    series.map(({ name, i }) => {
      const v = r[i];
      return {
        group: String(r[label] ?? ''),
        series: name,
        value: typeof v === 'number' && Number.isFinite(v) ? v : null,
      };
    }),
  );
  const names = series.map((c) => c.name);
  const height = 240;
  return {
    // No title: the chart sits under the table's own heading.
    width: Math.max(320, Math.min(1000, groups.length * (28 * names.length + 24))),
    height,
    data: { values },
    encoding: {
      x: {
        field: 'group',
        type: 'nominal',
        sort: groups,
        title: null,
        axis: { labelAngle: groups.length > 8 ? -40 : 0, labelLimit: 140 },
      },
      xOffset: { field: 'series', sort: names },
    },
    layer: [
      {
        transform: [{ filter: 'datum.value != null' }],
        mark: { type: 'bar' },
        encoding: {
          y: {
            field: 'value',
            type: 'quantitative',
            title: chart.axis ?? table.title,
            scale: {
              domain: fitDomain(
                values.map((v) => v.value),
                height,
              ),
              nice: false,
            },
          },
          color: {
            field: 'series',
            type: 'nominal',
            title: null,
            scale: { domain: names, range: SERIES_COLOURS },
            legend: { orient: 'top', labelLimit: 300 },
          },
          tooltip: [{ field: 'group' }, { field: 'series' }, { field: 'value', format: '.2f' }],
        },
      },
      ...BAR_LABELS,
    ],
    config: CONFIG,
  } as TopLevelSpec;
}

/**
 * One point per method x case: errors corrected (mean of its available four numbers) against the
 * clean accuracy drop. Points with neither number are left out and counted in the subtitle.
 */
export function tradeoffScatterSpec(methods: MethodResult[]): TopLevelSpec {
  const names = unique(methods.map((m) => m.method));
  const points = methods.map((m) => ({
    method: m.method,
    case: m.case ?? '',
    corrected: meanPresent(MEASURES.map((k) => m[k.key])),
    drop: m.cleanDrop,
  }));
  const shown = points.filter((p) => !isMissing(p.corrected) && !isMissing(p.drop));
  const left = points.length - shown.length;
  return {
    title: {
      text: 'Errors corrected vs clean accuracy drop',
      subtitle:
        'one point per method and case; errors corrected = mean of the available four numbers' +
        (left ? `; ${left} point${left > 1 ? 's' : ''} n/a, not shown` : ''),
    },
    width: 420,
    height: SCATTER_HEIGHT,
    data: { values: shown },
    layer: [
      {
        mark: { type: 'point', filled: true, size: 90, opacity: 0.85, stroke: 'white' },
        encoding: {
          // Pixels of room on every side, so a point is never cut at the plot's edge.
          x: {
            field: 'drop',
            type: 'quantitative',
            title: 'clean accuracy drop (points)',
            scale: { padding: 14 },
          },
          y: {
            field: 'corrected',
            type: 'quantitative',
            title: 'errors corrected (%)',
            scale: {
              domain: fitDomain(
                shown.map((p) => p.corrected),
                SCATTER_HEIGHT,
              ),
              nice: false,
            },
          },
          // Same field, title and domain on both channels, so Vega-Lite draws one merged legend.
          color: { field: 'method', type: 'nominal', scale: { domain: names }, title: 'method' },
          shape: { field: 'method', type: 'nominal', scale: { domain: names }, title: 'method' },
          tooltip: [
            { field: 'method' },
            { field: 'case' },
            { field: 'corrected', format: '.1f' },
            { field: 'drop', format: '.2f' },
          ],
        },
      },
      {
        mark: { type: 'rule', color: '#9ca3af', strokeDash: [4, 3] },
        encoding: { y: { datum: 0 } },
      },
    ],
    config: CONFIG,
  } as TopLevelSpec;
}

/**
 * Concept x class heat map of the accuracy drop (red: the class needs the concept). Wide maps keep
 * the HEATMAP_MAX_CLASSES classes with the largest drop; the CSV and the table keep everything.
 */
export function discoveryHeatmapSpec(cells: DiscoveryCell[]): TopLevelSpec {
  const worst = new Map<string, number>();
  for (const c of cells) {
    const d = isMissing(c.drop) ? -Infinity : c.drop;
    worst.set(c.className, Math.max(worst.get(c.className) ?? -Infinity, d));
  }
  const classes = [...worst.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, HEATMAP_MAX_CLASSES)
    .map(([name]) => name);
  const keep = new Set(classes);
  const concepts = unique(cells.map((c) => c.concept));
  const values = cells
    .filter((c) => keep.has(c.className))
    .map((c) => ({
      concept: c.concept,
      class: c.className,
      drop: isMissing(c.drop) ? null : c.drop,
      images: c.images,
    }));
  const extent = Math.max(1, ...values.map((v) => Math.abs(v.drop ?? 0)));
  const hidden = worst.size - classes.length;
  const small = values.length <= 240;
  return {
    title: {
      text: 'Rule discovery: accuracy drop when the concept is transformed',
      subtitle:
        'points of accuracy lost per class; red = the class relies on the concept' +
        (hidden ? `; ${classes.length} classes with the largest drop (of ${worst.size})` : ''),
    },
    width: { step: classes.length > 20 ? 24 : 40 },
    height: { step: 30 },
    data: { values },
    encoding: {
      x: {
        field: 'class',
        type: 'nominal',
        sort: classes,
        title: null,
        axis: { labelAngle: -45, labelLimit: 160 },
      },
      y: { field: 'concept', type: 'nominal', sort: concepts, title: null },
    },
    layer: [
      {
        mark: { type: 'rect', stroke: 'white', strokeWidth: 1 },
        encoding: {
          color: {
            field: 'drop',
            type: 'quantitative',
            title: 'drop (points)',
            scale: { scheme: 'redblue', reverse: true, domain: [-extent, extent], domainMid: 0 },
          },
          tooltip: [
            { field: 'concept' },
            { field: 'class' },
            { field: 'drop', format: '.1f' },
            { field: 'images' },
          ],
        },
      },
      ...(small
        ? [
            {
              mark: { type: 'text' as const, fontSize: 9 },
              encoding: {
                text: { field: 'drop', format: '.0f' },
                color: {
                  condition: { test: `abs(datum.drop) > ${extent * 0.6}`, value: 'white' },
                  value: '#111827',
                },
              },
            },
          ]
        : []),
    ],
    config: CONFIG,
  } as TopLevelSpec;
}

/**
 * Vega-Lite -> Vega -> SVG, ready to inline in HTML: ids (legend gradients, clip paths) get a
 * per-chart prefix because several SVGs share one document, and the namespace attributes are
 * dropped because the HTML parser does not need them (so the file names no http URL at all).
 */
export async function renderChart(
  spec: TopLevelSpec,
  label: string,
  idPrefix: string,
): Promise<string> {
  const [vega, { compile }] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    // Vega numbers clip paths with a process-wide counter: renumber in order of appearance so the
    // same report renders to the same bytes.
    const ids = new Map<string, string>();
    for (const m of svg.matchAll(/\bid="([^"]+)"/g)) ids.set(m[1], `${idPrefix}-${ids.size + 1}`);
    const rename = (id: string) => ids.get(id) ?? id;
    return svg
      .replace(/\s+xmlns(:xlink)?="[^"]*"/g, '')
      .replace(/\bid="([^"]+)"/g, (_, id) => `id="${rename(id)}"`)
      .replace(/url\(#([^)]+)\)/g, (_, id) => `url(#${rename(id)})`)
      .replace(/href="#([^"]+)"/g, (_, id) => `href="#${rename(id)}"`)
      .replace(/^<svg\b/, `<svg role="img" aria-label="${escapeHtml(label)}"`);
  } finally {
    view.finalize();
  }
}
