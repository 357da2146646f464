import { sha256 } from '../io/digest.js';
import { resolve } from 'node:path';
import type { Redis } from 'ioredis';
import { classifierOf, type Classifier } from '../classifier.js';
import type { TestSetManifest } from '../concepts/testset.js';
import type { DatasetItem } from '../data/dataset.js';
import { parsePreprocess, specToJson } from '../data/preprocess.js';
import { RuleditError } from '../errors.js';
import type { HarnessOptions } from '../eval/harness.js';
import { fileDigest } from '../io/digest.js';
import { loadModel, type OnnxModel } from '../onnx/model.js';

/**
 * Everything a worker needs besides a trial's case and setting, stored once in Redis under its
 * content hash: the model's path and bytes' hash, its preprocessing and labels, the test sets,
 * the data sets, and the sha256 of every file the trials read. Paths are absolute: workers read
 * them from a disk they share with the coordinator, and refuse a study whose bytes differ.
 */
export interface Study {
  version: 1;
  model: { path: string; hash: string };
  preprocess: Record<string, unknown>;
  labels?: string[];
  testsets: TestSetManifest[];
  clean: DatasetItem[];
  statsData?: DatasetItem[];
  guardData?: DatasetItem[];
  guardMaxDrop?: number;
  batchSize?: number;
  /** sha256 of each file read by a trial (images, masks, style images), by absolute path. */
  files: Record<string, string>;
  /** Keys of the rewrite's statistics in Redis (queue/statistics.ts), computed once for all workers. */
  stats?: string[];
}

const KEY = (hash: string) => `ruledit:study:${hash}`;
/** What a coordinator puts in Redis outlives it (a rerun finds it), not forever. */
export const KEEP_SECONDS = 30 * 24 * 3600;

export async function studyOf(classifier: Classifier, options: HarnessOptions): Promise<Study> {
  const { model, spec, labels } = classifier;
  if (!model.path)
    throw new RuleditError(
      'bad-option',
      'a queued run needs a model loaded from a file the workers can read (loadClassifier)',
    );
  if (options.stats)
    throw new RuleditError(
      'bad-option',
      'a queued run computes the statistics on the workers: give `statsData`, not `stats`',
    );
  if (options.edit)
    throw new RuleditError('bad-option', 'a queued run edits with the workers’ own `edit`');
  const items = (list?: DatasetItem[]) => list?.map((i) => ({ ...i, file: resolve(i.file) }));
  const testsets = options.testsets.map((m) => ({
    ...m,
    transformation:
      m.transformation.kind === 'stylize'
        ? { ...m.transformation, model: resolve(m.transformation.model) }
        : m.transformation,
    style: { ...m.style, images: m.style.images.map((f) => resolve(f)) },
    images: m.images.map((i) => ({ ...i, file: resolve(i.file), mask: resolve(i.mask) })),
    cases: m.cases.map((c) => ({
      ...c,
      sameStyle: resolve(c.sameStyle),
      heldoutStyles: c.heldoutStyles.map((f) => resolve(f)),
    })),
  }));
  const study: Study = {
    version: 1,
    model: { path: model.path, hash: model.hash },
    preprocess: specToJson(spec),
    ...(labels ? { labels } : {}),
    testsets,
    clean: items(options.clean)!,
    ...(options.statsData ? { statsData: items(options.statsData) } : {}),
    ...(options.guardData ? { guardData: items(options.guardData) } : {}),
    ...(options.guardMaxDrop !== undefined ? { guardMaxDrop: options.guardMaxDrop } : {}),
    ...(options.batchSize ? { batchSize: options.batchSize } : {}),
    files: {},
  };
  const paths = new Set([
    ...[study.clean, study.statsData ?? [], study.guardData ?? []].flat().map((i) => i.file),
    ...testsets.flatMap((m) => [
      ...m.style.images,
      ...m.images.flatMap((i) => [i.file, i.mask]),
      ...(m.transformation.kind === 'stylize' ? [m.transformation.model] : []),
    ]),
  ]);
  study.files = await digests(paths);
  return study;
}

export const studyHash = (study: Study) => sha256(JSON.stringify(study)).slice(0, 16);

export async function saveStudy(redis: Redis, study: Study): Promise<string> {
  const hash = studyHash(study);
  await redis.set(KEY(hash), JSON.stringify(study), 'EX', KEEP_SECONDS);
  return hash;
}

/**
 * A study as this worker sees it: its classifier, once the model and every file have been found
 * with the coordinator's bytes. `model` reads and checks the model (a worker's keeps one per
 * path and hash).
 */
export async function openStudy(
  redis: Redis,
  hash: string,
  model: (m: Study['model']) => Promise<OnnxModel> = checkedModel,
): Promise<{ study: Study; classifier: Classifier }> {
  const raw = await redis.get(KEY(hash));
  if (!raw)
    throw new RuleditError(
      'no-study',
      `study ${hash} is not in Redis any more (expired or deleted): rerun the coordinator`,
    );
  const study = JSON.parse(raw) as Study;
  const checked = await model(study.model);
  await checkFiles(study.files);
  const spec = parsePreprocess(study.preprocess, `study ${hash}`);
  return { study, classifier: classifierOf(checked, spec, study.labels) };
}

const differs = (path: string, what: string) =>
  new RuleditError(
    'study-mismatch',
    `this worker reads different bytes at ${path} than the coordinator (${what}): ` +
      'workers need the coordinator’s files at the same paths (a shared disk or a synced copy)',
  );

/** The model at `path`, if its bytes are the coordinator's. */
export async function checkedModel({
  path,
  hash,
}: {
  path: string;
  hash: string;
}): Promise<OnnxModel> {
  const model = await loadModel(path).catch((e: Error) => {
    throw differs(path, e.message);
  });
  if (model.hash !== hash)
    throw differs(path, `sha256 ${model.hash.slice(0, 12)}..., expected ${hash.slice(0, 12)}...`);
  return model;
}

/** Every file's sha256 as the coordinator saw it. */
export async function checkFiles(files: Record<string, string>): Promise<void> {
  for (const [path, digest] of Object.entries(files)) {
    const mine = await digestOf(path).catch(() => 'missing');
    if (mine !== digest)
      throw differs(
        path,
        mine === 'missing'
          ? 'not found'
          : `sha256 ${mine.slice(0, 12)}..., expected ${digest.slice(0, 12)}...`,
      );
  }
}

/** sha256 of each file, by path. */
export async function digests(paths: Iterable<string>): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const path of [...new Set(paths)].sort()) out[path] = await digestOf(path);
  return out;
}

async function digestOf(path: string): Promise<string> {
  try {
    return await fileDigest(path);
  } catch (e) {
    throw new RuleditError('not-found', `cannot read ${path}: ${(e as Error).message}`);
  }
}
