import { RuleditError } from '../errors.js';
import { readInput } from '../io/read-input.js';
import {
  MEASURES,
  type DiscoveryCell,
  type MethodResult,
  type ReportData,
  type ReportExample,
  type ReportTable,
} from './types.js';

/**
 * report.json is the whole report in one file, so `ruledit report` can re-render it alone:
 * the ReportData fields plus `format` and `version`, with every example image as a base64 string
 * of its PNG bytes, and NaN (nothing to measure) as null.
 */
export const REPORT_FORMAT = 'ruledit-report';
export const REPORT_VERSION = 1;

const IMAGE_KEYS = ['original', 'mask', 'transformed'] as const;

export function reportToJson(data: ReportData): string {
  const examples = data.examples?.map((ex) => {
    const out: Record<string, unknown> = { ...ex };
    for (const k of IMAGE_KEYS) if (ex[k]) out[k] = ex[k]!.toString('base64');
    return out;
  });
  const doc = { format: REPORT_FORMAT, version: REPORT_VERSION, ...data, examples };
  // JSON.stringify writes NaN and Infinity as null, which parseReport reads back as NaN.
  return JSON.stringify(doc, null, 2) + '\n';
}

export async function readReport(path: string): Promise<ReportData> {
  const text = (await readInput(path, 'report')).toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new RuleditError('bad-report', `${path} is not JSON (${(e as Error).message})`);
  }
  return parseReport(json, path);
}

/** A report.json document back to ReportData; every mistake names the field and the file. */
export function parseReport(json: unknown, where: string): ReportData {
  const bad = (field: string, what: string) =>
    new RuleditError('bad-report', `${where}: ${field} must be ${what}`);
  if (!isObject(json) || json.format !== REPORT_FORMAT)
    throw new RuleditError(
      'bad-report',
      `${where} is not a ruledit report (no "format": "${REPORT_FORMAT}"); write one with writeReport`,
    );
  if (json.version !== REPORT_VERSION)
    throw new RuleditError(
      'bad-report',
      `${where} is report version ${String(json.version)}; this ruledit reads version ${REPORT_VERSION}`,
    );
  const str = (v: unknown, field: string) => {
    if (typeof v !== 'string') throw bad(field, 'a string');
    return v;
  };
  const optStr = (v: unknown, field: string) => (v === undefined ? undefined : str(v, field));
  const num = (v: unknown, field: string) => {
    if (v === null) return NaN;
    if (typeof v !== 'number') throw bad(field, 'a number or null');
    return v;
  };
  const numOrNull = (v: unknown, field: string) => (v === null ? null : num(v, field));
  const list = <T>(v: unknown, field: string, item: (x: unknown, f: string) => T) => {
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) throw bad(field, 'a list');
    return v.map((x, i) => item(x, `${field}[${i}]`));
  };
  const obj = (v: unknown, field: string) => {
    if (!isObject(v)) throw bad(field, 'an object');
    return v;
  };
  const image = (v: unknown, field: string) => {
    if (v === undefined) return undefined;
    const bytes = Buffer.from(str(v, field), 'base64');
    if (!bytes.length) throw bad(field, 'base64 image bytes');
    return bytes;
  };

  const example = (x: unknown, f: string): ReportExample => {
    const o = obj(x, f);
    return {
      caption: str(o.caption, `${f}.caption`),
      original: image(o.original, `${f}.original`) ?? throwing(bad(`${f}.original`, 'an image')),
      mask: image(o.mask, `${f}.mask`),
      maskLabel: optStr(o.maskLabel, `${f}.maskLabel`),
      transformed: image(o.transformed, `${f}.transformed`),
      before: optStr(o.before, `${f}.before`),
      after: optStr(o.after, `${f}.after`),
    };
  };
  const table = (x: unknown, f: string): ReportTable => {
    const o = obj(x, f);
    const columns = list(o.columns, `${f}.columns`, str) ?? throwing(bad(`${f}.columns`, 'a list'));
    const rows =
      list(o.rows, `${f}.rows`, (r, rf) =>
        list(r, rf, (c, cf) => {
          if (c !== null && typeof c !== 'string' && typeof c !== 'number')
            throw bad(cf, 'a string, number or null');
          return c;
        })!,
      ) ?? throwing(bad(`${f}.rows`, 'a list'));
    const t: ReportTable = { title: str(o.title, `${f}.title`), columns, rows };
    const note = optStr(o.note, `${f}.note`);
    if (note !== undefined) t.note = note;
    if (o.chart !== undefined) {
      const c = obj(o.chart, `${f}.chart`);
      t.chart = {
        label: str(c.label, `${f}.chart.label`),
        values:
          list(c.values, `${f}.chart.values`, str) ?? throwing(bad(`${f}.chart.values`, 'a list')),
      };
      const axis = optStr(c.axis, `${f}.chart.axis`);
      if (axis !== undefined) t.chart.axis = axis;
    }
    return t;
  };
  const method = (x: unknown, f: string): MethodResult => {
    const o = obj(x, f);
    const m: MethodResult = {
      method: str(o.method, `${f}.method`),
      targetSame: null,
      targetHeldout: null,
      otherSame: null,
      otherHeldout: null,
      cleanDrop: num(o.cleanDrop, `${f}.cleanDrop`),
    };
    if (o.case !== undefined) m.case = str(o.case, `${f}.case`);
    for (const k of MEASURES) m[k.key] = numOrNull(o[k.key] ?? null, `${f}.${k.key}`);
    return m;
  };
  const cell = (x: unknown, f: string): DiscoveryCell => {
    const o = obj(x, f);
    return {
      concept: str(o.concept, `${f}.concept`),
      className: str(o.className, `${f}.className`),
      drop: num(o.drop, `${f}.drop`),
      images: num(o.images, `${f}.images`),
    };
  };

  const data: ReportData = { title: str(json.title, 'title') };
  const created = optStr(json.created, 'created');
  if (created !== undefined) data.created = created;
  const summary = list(json.summary, 'summary', str);
  if (summary) data.summary = summary;
  const examples = list(json.examples, 'examples', example);
  if (examples) data.examples = examples;
  const tables = list(json.tables, 'tables', table);
  if (tables) data.tables = tables;
  const methods = list(json.methods, 'methods', method);
  if (methods) data.methods = methods;
  const discovery = list(json.discovery, 'discovery', cell);
  if (discovery) data.discovery = discovery;
  return data;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function throwing(e: Error): never {
  throw e;
}
