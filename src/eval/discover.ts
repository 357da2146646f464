import type { ConceptIndex } from '../concepts/concept-index.js';
import type { Style } from '../concepts/style.js';
import { DEFAULT_TRANSFORM } from '../concepts/testset.js';
import { transformedFiles, type StyleTransform, type Variant } from '../concepts/transformed.js';
import type { PreprocessSpec } from '../data/preprocess.js';
import { RuleditError } from '../errors.js';
import type { OnnxModel } from '../onnx/model.js';
import { predictFiles } from './predictions.js';

/** Rule discovery: accuracy drop of a class when a concept is transformed. */
export interface DiscoveryCell {
  concept: string;
  className: string;
  /** Accuracy drop in points. */
  drop: number;
  /** Images of the class that contain the concept. */
  images: number;
}

/**
 * Prediction-rule discovery (docs/method.md section 9): for every concept and class, how much accuracy
 * the class loses on its images that contain the concept when only the concept is transformed.
 * A large drop says the class relies on the concept ("cows need grass").
 */
export interface DiscoveryOptions {
  spec: PreprocessSpec;
  /** Concepts to test (default: every concept of the index). */
  concepts?: string[];
  styles: Style[];
  transformation?: StyleTransform;
  /** Classes with fewer images containing the concept are left out (reported as skipped). */
  minImages?: number;
  classNames?: string[];
  batchSize?: number;
  threads?: number;
  cacheDir?: string;
  /** Make the transformed images again (once in this run), ignoring the cache. */
  refresh?: boolean;
  /** Told when a cached transformed image fails its checksum and is made again. */
  onWarning?: (message: string) => void;
  onProgress?: (stage: 'transform' | 'predict', done: number, total: number) => void;
  /** Where the (concept, style) units are predicted (default: here, all at once). */
  executor?: DiscoveryExecutor;
}

export interface DiscoveryRow {
  concept: string;
  class: number;
  className: string;
  /** Images of the class containing the concept. */
  images: number;
  /** Top-1 accuracy (%) on those images as they are. */
  before: number;
  /** Mean over styles of the mean over each style's images of the accuracy (%) once transformed. */
  after: number;
  /** before - after, in points: positive = the class relies on the concept. */
  drop: number;
  perStyle: Record<string, number>;
}

export interface Discovery {
  /** Most reliant first: by drop, then by image count. */
  rows: DiscoveryRow[];
  /** (concept, class) pairs with fewer than minImages images. */
  skipped: { concept: string; class: number; images: number }[];
  /** Concept images the index gives no class (they cannot be scored). */
  unlabelled: number;
  /** Transformed images predicted. */
  variants: number;
}

export async function discoverRules(
  model: OnnxModel,
  index: ConceptIndex,
  options: DiscoveryOptions,
): Promise<Discovery> {
  const concepts = options.concepts ?? index.concepts;
  const minImages = options.minImages ?? 3;
  const unknown = concepts.filter((c) => !index.concepts.includes(c));
  if (unknown.length)
    throw new RuleditError(
      'unknown-concept',
      `unknown concept${unknown.length > 1 ? 's' : ''} ${unknown.map((c) => `'${c}'`).join(', ')}: ` +
        `the index knows ${index.concepts.join(', ')}`,
    );
  if (!concepts.length) throw new RuleditError('bad-option', 'no concepts given');
  if (!options.styles.length) throw new RuleditError('bad-option', 'no styles given');
  const names = options.styles.map((s) => s.name);
  if (new Set(names).size !== names.length)
    throw new RuleditError('bad-option', `two styles share a folder name: ${names.join(', ')}`);
  if (!(Number.isInteger(minImages) && minImages >= 1))
    throw new RuleditError(
      'bad-option',
      `\`minImages\` must be a whole number >= 1, got ${minImages}`,
    );

  // Cells: (concept, class) -> the images of that class with the concept.
  const cells: { concept: string; cls: number; images: { file: string; mask: string }[] }[] = [];
  const skipped: Discovery['skipped'] = [];
  let unlabelled = 0;
  for (const concept of concepts) {
    const byClass = new Map<number, { file: string; mask: string }[]>();
    for (const e of index.images) {
      const mask = e.masks[concept];
      if (!mask) continue;
      if (e.label === undefined) {
        unlabelled++;
        continue;
      }
      byClass.set(e.label, [...(byClass.get(e.label) ?? []), { file: e.file, mask }]);
    }
    for (const [cls, images] of [...byClass].sort((a, b) => a[0] - b[0])) {
      if (images.length >= minImages) cells.push({ concept, cls, images });
      else skipped.push({ concept, class: cls, images: images.length });
    }
  }

  // One unit per (concept, style): the concept's images of every kept cell, in cell order.
  const units: DiscoveryUnit[] = concepts.flatMap((concept) => {
    const images = cells.filter((c) => c.concept === concept).flatMap((c) => c.images);
    return images.length ? options.styles.map((style) => ({ concept, images, style })) : [];
  });
  const predicted = await (options.executor ?? inProcessDiscovery).run(model, units, options);
  const unitOf = new Map(units.map((u, k) => [`${u.concept}\0${u.style.name}`, predicted[k]]));
  const offset = new Map<string, number>();

  const rows: DiscoveryRow[] = cells.map((cell) => {
    const n = cell.images.length;
    const start = offset.get(cell.concept) ?? 0;
    offset.set(cell.concept, start + n);
    const of = (s: Style) => unitOf.get(`${cell.concept}\0${s.name}`)!;
    const own = of(options.styles[0]).original.slice(start, start + n);
    const before = (100 * own.filter((c) => c === cell.cls).length) / n;
    const perStyle: Record<string, number> = {};
    for (const s of options.styles) {
      const { transformed } = of(s);
      const k = s.images.length;
      let correct = 0;
      for (let i = start * k; i < (start + n) * k; i++) if (transformed[i] === cell.cls) correct++;
      perStyle[s.name] = (100 * correct) / (n * k);
    }
    const after = Object.values(perStyle).reduce((a, b) => a + b, 0) / options.styles.length;
    return {
      concept: cell.concept,
      class: cell.cls,
      className: options.classNames?.[cell.cls] ?? String(cell.cls),
      images: n,
      before,
      after,
      drop: before - after,
      perStyle,
    };
  });
  rows.sort(
    (a, b) =>
      b.drop - a.drop ||
      b.images - a.images ||
      (a.concept < b.concept ? -1 : a.concept > b.concept ? 1 : 0) ||
      a.class - b.class,
  );
  const variants = units.reduce((a, u) => a + u.images.length * u.style.images.length, 0);
  return { rows, skipped, unlabelled, variants };
}

/** A (concept, style) of a discovery: the concept's images, each transformed with each style image. */
export interface DiscoveryUnit {
  concept: string;
  images: { file: string; mask: string }[];
  style: Style;
}

/** A unit's top-1 predictions: each image as it is, and transformed (image-major, style image minor). */
export interface UnitPredictions {
  original: number[];
  transformed: number[];
}

/** Where a discovery's units are predicted: here (default), or on queue workers (queue/discovery.ts). */
export interface DiscoveryExecutor {
  run(
    model: OnnxModel,
    units: DiscoveryUnit[],
    options: DiscoveryOptions,
  ): Promise<UnitPredictions[]>;
}

/** The units' variants of a unit, in the order of `UnitPredictions.transformed`. */
export function unitVariants(u: DiscoveryUnit): Variant[] {
  return u.images.flatMap((img) =>
    u.style.images.map((image) => ({ image: img.file, mask: img.mask, style: image })),
  );
}

/** Every unit at once: one transformation pass, one ONNX Runtime session for all predictions. */
export const inProcessDiscovery: DiscoveryExecutor = {
  async run(model, units, options) {
    const variants = units.map(unitVariants);
    const files = await transformedFiles(
      variants.flat(),
      options.transformation ?? DEFAULT_TRANSFORM,
      {
        cacheDir: options.cacheDir,
        refresh: options.refresh,
        onWarning: options.onWarning,
        onProgress: (d, n) => options.onProgress?.('transform', d, n),
      },
    );
    const originals = [...new Set(units.flatMap((u) => u.images.map((i) => i.file)))];
    const all = [...originals, ...files];
    let predicted = 0;
    const preds = await predictFiles(model, all, options.spec, {
      batchSize: options.batchSize,
      threads: options.threads,
      onBatch: (n) => options.onProgress?.('predict', (predicted += n), all.length),
    });
    const original = new Map(originals.map((f, i) => [f, preds[i]]));
    let v = originals.length;
    return units.map((u, k) => ({
      original: u.images.map((i) => original.get(i.file)!),
      transformed: Array.from(preds.subarray(v, (v += variants[k].length))),
    }));
  },
};

/** The rows as the report's heat map and CSV take them. */
export function discoveryCells(rows: DiscoveryRow[]): DiscoveryCell[] {
  return rows.map((r) => ({
    concept: r.concept,
    className: r.className,
    drop: r.drop,
    images: r.images,
  }));
}
