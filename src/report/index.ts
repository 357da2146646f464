// `ruledit/report`: one self-contained HTML report (with Vega-Lite charts), JSON and CSV, from
// plain ReportData; a headless-browser check of the page (needs the optional playwright-core).
export { writeReport, type WriteReportOptions, type WrittenReport } from './write.js';
export { readReport, parseReport, reportToJson } from './json.js';
export { renderHtml } from './html.js';
export { toCsv } from './csv.js';
export { inputToPng, maskToPng } from './images.js';
export { screenshotReport, type PageCheck } from './screenshot.js';
export type {
  ReportData,
  ReportExample,
  ReportTable,
  MethodResult,
  DiscoveryCell,
} from './types.js';
