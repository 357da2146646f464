import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import sharp from 'sharp';
import { openDataset, type Dataset } from '../data/dataset.js';
import { cacheDir } from '../io/cache.js';
import { RuleditError } from '../errors.js';
import { checkFile, writeChecked } from '../io/checked-file.js';
import { openSource, type MaskSource, type OpenedSource } from './mask-source.js';
import { Skips, type SkipReport } from './skips.js';

export type { MaskSource } from './mask-source.js';

/** One image of a data set and the concepts it contains. */
export interface ConceptEntry {
  /** Absolute image path, as DatasetItem.file. */
  file: string;
  label?: number;
  /** concept -> absolute path of a PNG mask at the image's own size, 255 = concept. */
  masks: Record<string, string>;
  /** concept -> fraction of the image covered. */
  areas: Record<string, number>;
}

/** Which images of a data set contain which concept (docs/method.md section 9), cached on disk. */
export interface ConceptIndex {
  version: 1;
  /** Data set root. */
  dataset: string;
  /** Where the masks came from, e.g. 'segmentation:/path/model.onnx threshold=0.5 minArea=0.01'. */
  source: string;
  concepts: string[];
  /** Only images containing at least one concept, in data set order. */
  images: ConceptEntry[];
  /** What was left out and why (empty masks, annotations of missing images, ...). */
  skipped?: SkipReport[];
}

export interface ConceptIndexOptions {
  /** Cache folder; default the one of the key statistics ($RULEDIT_CACHE or ~/.cache/ruledit). */
  cacheDir?: string;
  /** Rebuild even when a cached index exists. */
  refresh?: boolean;
  /** Only these concepts (default: every concept the source knows). */
  concepts?: string[];
  onProgress?: (done: number, total: number) => void;
  /** Told when a cached index fails its checksums and is rebuilt. */
  onWarning?: (message: string) => void;
  /** Told the path of the index file (cached or about to be written) before any work. */
  onIndexFile?: (path: string) => void;
  /** ONNX Runtime threads for a segmentation model (0 = one per core). */
  threads?: number;
}

const VERSION = 'concept-index-v1';

/** The index file the options map to (it may not exist yet). */
export async function conceptIndexFile(
  datasetPath: string,
  source: MaskSource,
  options: ConceptIndexOptions = {},
): Promise<string> {
  const { file } = await prepare(datasetPath, source, options);
  return file;
}

export async function buildConceptIndex(
  datasetPath: string,
  source: MaskSource,
  options: ConceptIndexOptions = {},
): Promise<ConceptIndex> {
  const { dataset, opened, wanted, file, folder } = await prepare(datasetPath, source, options);
  options.onIndexFile?.(file);
  if (!options.refresh && existsSync(file)) {
    // The index and every mask it lists must match their checksums: an entry damaged, edited by
    // hand or whose masks were cleaned away is rebuilt, with a note.
    const files = [file];
    const cached = await loadConceptIndex(file).catch(() => undefined);
    for (const e of cached?.images ?? []) files.push(...Object.values(e.masks));
    const states = await Promise.all(files.map(checkFile));
    if (cached && states.every((s) => s === 'ok')) {
      options.onProgress?.(dataset.items.length, dataset.items.length);
      return cached;
    }
    options.onWarning?.(
      `the cached concept index ${file} (or a mask it lists) is missing, damaged or edited: rebuilding it`,
    );
  }
  const skips = new Skips();
  const reader = await opened.open(wanted, dataset, skips, options.threads);
  const entries: (ConceptEntry | undefined)[] = new Array(dataset.items.length);
  const total = dataset.items.length;
  let done = 0;
  let next = 0;
  // Two images in flight: one decodes or writes (libuv threads) while the other computes.
  const worker = async () => {
    while (next < total) {
      const i = next++;
      const item = dataset.items[i];
      const masks = await reader.masksFor(item, i);
      if (masks.size) {
        const entry: ConceptEntry = {
          file: item.file,
          ...(item.label !== undefined ? { label: item.label } : {}),
          masks: {},
          areas: {},
        };
        for (const concept of wanted) {
          const m = masks.get(concept);
          if (!m) continue;
          const path = join(folder, 'masks', safeName(concept), `${i}_${stemOf(item.file)}.png`);
          const png = await sharp(m.mask, {
            raw: { width: m.width, height: m.height, channels: 1 },
          })
            .toColourspace('b-w') // a one-channel PNG, a third of an RGB one
            .png()
            .toBuffer();
          await writeChecked(path, png);
          entry.masks[concept] = path;
          entry.areas[concept] = m.area;
        }
        entries[i] = entry;
      }
      options.onProgress?.(++done, total);
    }
  };
  try {
    await Promise.all([worker(), worker()]);
    await reader.finish();
  } finally {
    await reader.close();
  }
  const index: ConceptIndex = {
    version: 1,
    dataset: dataset.root,
    source: opened.describe,
    concepts: wanted,
    images: entries.filter((e): e is ConceptEntry => e !== undefined),
    skipped: skips.list(),
  };
  // Written last: an interrupted build leaves no index, so the next run starts over.
  await writeChecked(file, JSON.stringify(index));
  return index;
}

export async function loadConceptIndex(path: string): Promise<ConceptIndex> {
  let json: ConceptIndex;
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR')
      throw new RuleditError('not-found', `concept index not found: ${path}`);
    throw new RuleditError(
      'bad-index',
      `${path} is not a concept index: ${(e as Error).message.split('\n')[0]}`,
    );
  }
  if (
    json?.version !== 1 ||
    typeof json.dataset !== 'string' ||
    !Array.isArray(json.concepts) ||
    !Array.isArray(json.images) ||
    !json.images.every((e) => typeof e?.file === 'string' && typeof e.masks === 'object')
  )
    throw new RuleditError(
      'bad-index',
      `${path} is not a version 1 concept index (rebuild it with 'ruledit concepts')`,
    );
  return json;
}

/** Images per concept, most frequent first (ties in the index's concept order). */
export function conceptCounts(index: ConceptIndex): { concept: string; images: number }[] {
  const counts = new Map(index.concepts.map((c) => [c, 0]));
  for (const e of index.images)
    for (const c of Object.keys(e.masks)) counts.set(c, (counts.get(c) ?? 0) + 1);
  return [...counts]
    .map(([concept, images]) => ({ concept, images }))
    .sort((a, b) => b.images - a.images);
}

async function prepare(
  datasetPath: string,
  source: MaskSource,
  options: ConceptIndexOptions,
): Promise<{
  dataset: Dataset;
  opened: OpenedSource;
  wanted: string[];
  file: string;
  folder: string;
}> {
  const dataset = await openDataset(datasetPath);
  const opened = await openSource(source);
  const wanted = options.concepts ?? opened.concepts;
  const unknown = wanted.filter((c) => !opened.concepts.includes(c));
  if (unknown.length)
    throw new RuleditError(
      'unknown-concept',
      `unknown concept${unknown.length > 1 ? 's' : ''} ${unknown.map((c) => `'${c}'`).join(', ')} ` +
        `for ${opened.describe}; known: ${opened.concepts.join(', ')}`,
    );
  if (!wanted.length) throw new RuleditError('bad-option', 'no concepts requested');
  const h = createHash('sha256');
  h.update(`${VERSION}\0${dataset.root}\0${opened.describe}\0${JSON.stringify(wanted)}\0`);
  h.update(`${await opened.fingerprint()}\0`);
  for (const item of dataset.items) {
    const s = await stat(item.file).catch(() => undefined);
    h.update(`${item.file}\0${item.label}\0${s?.size}\0${s?.mtimeMs}\0`);
  }
  const folder = join(cacheDir(options.cacheDir), 'concepts', h.digest('hex').slice(0, 32));
  return { dataset, opened, wanted, file: join(folder, 'index.json'), folder };
}

/** A concept name as a folder name ('traffic light' stays, 'a/b' becomes 'a_b'). */
const safeName = (s: string) => s.replace(/[^\w .+-]/g, '_');
const stemOf = (file: string) => basename(file, extname(file));
