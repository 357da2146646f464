import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { appendFile, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { RuleditError } from '../errors.js';
import { alive, writeFileAtomic } from '../io/atomic.js';
import type { Setting } from '../edit/methods.js';
import type { ErrorsCorrected } from './protocol.js';

/** One method's four errors-corrected numbers and its clean drop: a row of a report. */
export interface MethodResult {
  method: string;
  /** The (concept, style, target class) case or any other grouping; optional. */
  case?: string;
  targetSame: number | null;
  targetHeldout: number | null;
  otherSame: number | null;
  otherHeldout: number | null;
  /** Clean accuracy drop of the edited model, in points. */
  cleanDrop: number;
}

/** ErrorsCorrected as JSON stores it: NaN (nothing to fix) becomes null. */
export interface Score {
  value: number | null;
  before: number;
  after: number;
  images: number;
}

export const MEASURE_KEYS = ['targetSame', 'targetHeldout', 'otherSame', 'otherHeldout'] as const;
export type MeasureKey = (typeof MEASURE_KEYS)[number];

/** One finished (case, method, seed): a line of the results .jsonl file. */
export interface ResultLine {
  version: 1;
  /** Identity of the job; a resumed run skips keys it finds. */
  key: string;
  /** Content hash of the model edited. */
  model: string;
  /** Content hash of the test set manifest. */
  testset: string;
  case: string;
  concept: string;
  style: string;
  target: number;
  targetName?: string;
  nTrain: number;
  /** Seed of the split (the manifest's seed + the run's seed index). */
  seed: number;
  method: string;
  kind: string;
  config: string;
  /** The setting chosen on the validation split, or null when every one broke the clean set. */
  setting: Setting | null;
  rejected?: string;
  /** The four errors-corrected numbers on the test split (null when rejected). */
  scores: Record<MeasureKey, Score> | null;
  /** Clean accuracy drop of the chosen setting, in points. */
  cleanDrop: number | null;
  /** Every setting tried: its validation score (mean of the available four numbers) and drop. */
  candidates: { setting: Setting; score: number | null; cleanDrop: number }[];
  /** Settings the rewrite's safety guard refused (no strength fitted its drop budget). */
  refused?: { setting: Setting; reason: string }[];
  /** The chosen edit: block, exemplar loss, and (rewrite) the strength the guard kept and its figures. */
  edit?: {
    block: string;
    lossBefore: number;
    lossAfter: number;
    strength?: number;
    guard?: {
      estimatedDrop: number;
      flipRate: number;
      meanKL: number;
      images: number;
      maxDrop: number;
    };
  };
  /** Variants scored: train exemplars, validation and test (image x style image). */
  images: { train: number; validation: number; test: number; clean: number };
  seconds: number;
  finished: string;
}

export function toScore(e: ErrorsCorrected): Score {
  return { value: Number.isNaN(e.value) ? null : e.value, ...pick(e) };
}
const pick = ({ before, after, images }: ErrorsCorrected) => ({ before, after, images });

/**
 * The lines of a results file (none when it does not exist). Only the last line may be cut short
 * (an interrupted append): it is dropped and the file rewritten without it, so the next append
 * starts on a clean line. Any other line that is not a result means the file is not a results
 * file (a model, a manifest, a README given by mistake): it is refused and left as it is. Lines
 * of another model are refused too: one results file, one model.
 */
export async function loadResults(path: string, modelHash: string): Promise<ResultLine[]> {
  if (!existsSync(path)) {
    if (!existsSync(dirname(path) || '.'))
      throw new RuleditError('not-found', `results folder ${dirname(path)} does not exist`);
    return [];
  }
  const text = await readFile(path, 'utf8');
  const rows = text.split('\n');
  const last = rows.pop()!; // '' when the file ends with a newline
  const notResults = (n: number) =>
    new RuleditError(
      'not-results',
      `${path} is not a ruledit results file (line ${n} is not a result line); nothing was changed: give a new or an existing results file as \`results\``,
    );
  const lines: ResultLine[] = [];
  rows.forEach((raw, i) => {
    if (!raw.trim()) return;
    const line = resultLine(raw);
    if (!line) throw notResults(i + 1);
    lines.push(line);
  });
  if (last) {
    const line = resultLine(last);
    // A cut append starts like every line ruledit writes; anything else is someone's file.
    if (!line && !last.startsWith('{"version":1,')) throw notResults(rows.length + 1);
    if (line) lines.push(line);
    await writeFileAtomic(path, lines.map((l) => JSON.stringify(l) + '\n').join(''), {
      force: true,
    });
  }
  const other = lines.find((l) => l.model !== modelHash);
  if (other)
    throw new RuleditError(
      'results-mismatch',
      `${path} holds results of another model (${other.model.slice(0, 12)}...); give a new \`results\` file`,
    );
  return lines;
}

function resultLine(raw: string): ResultLine | undefined {
  try {
    const line = JSON.parse(raw) as ResultLine;
    return line?.version === 1 && typeof line.key === 'string' ? line : undefined;
  } catch {
    return undefined;
  }
}

/**
 * One writer per results file (an advisory lock, PATH.lock holding the writer's pid): two runs
 * appending to one file would write every line twice. A lock left by a killed run is taken over.
 */
export function lockResults(path: string): () => void {
  const lock = `${path}.lock`;
  for (;;) {
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT')
        throw new RuleditError('not-found', `results folder ${dirname(path)} does not exist`);
      if (code !== 'EEXIST')
        throw new RuleditError('cannot-write', `cannot write ${lock}: ${(e as Error).message}`);
      const pid = Number(readFileSync(lock, 'utf8'));
      if (Number.isInteger(pid) && pid > 0 && alive(pid))
        throw new RuleditError(
          'locked',
          `${path} is being written by another run (pid ${pid}): wait for it to finish, or give another \`results\` file`,
        );
      rmSync(lock, { force: true });
    }
  }
  const release = () => rmSync(lock, { force: true });
  process.once('exit', release);
  return () => {
    process.off('exit', release);
    release();
  };
}

/** One write per line: an interruption loses at most the line being written. */
export async function appendResult(path: string, line: ResultLine): Promise<void> {
  await appendFile(path, JSON.stringify(line) + '\n');
}

/** MethodResult plus how many lines each mean is over. */
export interface MethodSummary extends MethodResult {
  /** (case, seed) lines of this method (and case). */
  lines: number;
  /** Lines where no setting kept the clean accuracy drop under the threshold. */
  rejected: number;
  /** Lines whose number was defined (not n/a), per measure. */
  counts: Record<MeasureKey, number>;
}

/**
 * Mean of each errors-corrected number over lines (cases and seeds), n/a values excluded, per
 * method, or per method and case. Rejected lines count in `rejected` only.
 */
export function aggregate(lines: ResultLine[], by: 'method' | 'case' = 'method'): MethodSummary[] {
  const groups = new Map<string, ResultLine[]>();
  for (const l of lines) {
    const key = by === 'case' ? `${l.method}\0${l.case}` : l.method;
    groups.set(key, [...(groups.get(key) ?? []), l]);
  }
  return [...groups.values()].map((group) => {
    const kept = group.filter((l) => l.scores);
    const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
    const counts = {} as Record<MeasureKey, number>;
    const values = {} as Record<MeasureKey, number | null>;
    for (const k of MEASURE_KEYS) {
      const xs = kept.map((l) => l.scores![k].value).filter((v): v is number => v !== null);
      counts[k] = xs.length;
      values[k] = xs.length ? mean(xs) : null;
    }
    return {
      method: group[0].method,
      ...(by === 'case' ? { case: group[0].case } : {}),
      ...values,
      cleanDrop: mean(kept.map((l) => l.cleanDrop!)),
      lines: group.length,
      rejected: group.length - kept.length,
      counts,
    };
  });
}
