// The report's stylesheet, inlined into the HTML so the file stands alone.
export const STYLE = `
:root { color-scheme: light; --ink: #1f2937; --muted: #6b7280; --line: #e5e7eb; --card: #fff;
  --bg: #f5f6f8; --accent: #1f5fa8; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 15px/1.5 system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 24px 48px; }
header { border-bottom: 3px solid var(--accent); margin-bottom: 24px; padding-bottom: 12px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 0 0 12px; }
.meta { color: var(--muted); font-size: 13px; margin: 0 0 8px; }
.summary { margin: 6px 0; max-width: 900px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  padding: 18px 20px; margin: 0 0 20px; }
.examples { display: flex; flex-wrap: wrap; gap: 16px; }
.example { margin: 0; border: 1px solid var(--line); border-radius: 8px; padding: 12px;
  background: #fafbfc; max-width: 100%; }
.panels { display: flex; flex-wrap: wrap; gap: 10px; }
.panel { display: flex; flex-direction: column; align-items: center; gap: 4px; font-size: 12px;
  color: var(--muted); text-transform: uppercase; letter-spacing: 0.04em; }
.panel img { display: block; max-width: 100%; height: auto; border-radius: 4px;
  border: 1px solid var(--line); background: #fff; }
img.pixelated { image-rendering: pixelated; }
figcaption p { margin: 10px 0 4px; font-weight: 600; }
.pred { display: grid; grid-template-columns: max-content 1fr; gap: 2px 10px; margin: 0;
  font-size: 14px; }
.pred dt { color: var(--muted); }
.pred dd { margin: 0; font-variant-numeric: tabular-nums; }
.charts { display: flex; flex-wrap: wrap; gap: 20px; align-items: flex-start; }
.chart { margin: 0 0 16px; overflow-x: auto; max-width: 100%; }
.chart svg { display: block; max-width: 100%; height: auto; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; font-size: 14px; min-width: 40%; }
th, td { padding: 6px 12px; border-bottom: 1px solid var(--line); text-align: left; }
th { background: #f0f2f5; font-weight: 600; white-space: nowrap; }
tbody tr:nth-child(even) { background: #fafbfc; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.na { text-align: right; color: var(--muted); font-style: italic; }
.note { color: var(--muted); font-size: 13px; margin: 10px 0 0; }
footer { color: var(--muted); font-size: 13px; }
code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; }
`;
