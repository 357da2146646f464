import { createHash } from 'node:crypto';
import { sha256 } from '../io/digest.js';
import { readFile } from 'node:fs/promises';
import { RuleditError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { rng } from '../util/random.js';
import type { ConceptIndex } from './concept-index.js';
import type { Style } from './style.js';
import type { StyleTransform, Variant } from './transformed.js';

/**
 * Test sets of docs/method.md section 9 for one (concept, style) pair. A manifest lists paths only (no
 * copied or transformed images): the concept images with their masks, and per target class the
 * split of those images into train exemplars, validation and test, plus which style image is
 * "the same" one and which are held out.
 */
export interface TestSetImage {
  file: string;
  label: number;
  mask: string;
}

export interface TestCase {
  /** concept/style/target, e.g. 'person/snowy_ground/817'. */
  id: string;
  target: number;
  targetName?: string;
  /** Seed the split was drawn from. */
  seed: number;
  /** The style image of the train exemplars and of the 'same style' test images. */
  sameStyle: string;
  /** The other images of the style, for the 'held-out' test images. */
  heldoutStyles: string[];
  /** Indices into the manifest's images, ascending; pairwise disjoint. */
  train: number[];
  validation: number[];
  test: number[];
}

export interface TestSetManifest {
  version: 1;
  kind: 'ruledit-testset';
  concept: string;
  style: { name: string; images: string[] };
  transformation: StyleTransform;
  /** Data set the index was built over: the clean test set for the clean accuracy drop. */
  dataset: string;
  index?: string;
  nTrain: number;
  /** Fraction of each test set held back for hyperparameter selection. */
  validation: number;
  /** Held-out style images per case (all but the same one when absent). */
  heldout?: number;
  seed: number;
  /** Every labelled image of the index that contains the concept. */
  images: TestSetImage[];
  cases: TestCase[];
  /** Concept images left out because the index gives them no class. */
  unlabelled: number;
}

export interface TestSetOptions {
  concept: string;
  style: Style;
  /** Train exemplars per case (the paper: 3 or 10); a target needs at least this many images. */
  nTrain?: number;
  /** One target class; default every eligible class, one case each. */
  target?: number;
  seed?: number;
  validation?: number;
  heldout?: number;
  transformation?: StyleTransform;
  /** Path of the index file, recorded in the manifest. */
  indexPath?: string;
  classNames?: string[];
}

export const DEFAULT_TRANSFORM: StyleTransform = { kind: 'texture', mode: 'stretch' };

/** Classes with at least `nTrain` concept images, most images first (ties: lower class first). */
export function eligibleTargets(
  images: TestSetImage[],
  nTrain: number,
): { target: number; images: number }[] {
  const counts = new Map<number, number>();
  for (const i of images) counts.set(i.label, (counts.get(i.label) ?? 0) + 1);
  return [...counts]
    .filter(([, n]) => n >= nTrain)
    .map(([target, n]) => ({ target, images: n }))
    .sort((a, b) => b.images - a.images || a.target - b.target);
}

export function buildTestSet(index: ConceptIndex, options: TestSetOptions): TestSetManifest {
  const { concept, style } = options;
  const nTrain = options.nTrain ?? 3;
  const seed = options.seed ?? 0;
  const validation = options.validation ?? 0.3;
  if (!index.concepts.includes(concept))
    throw new RuleditError(
      'unknown-concept',
      `unknown concept '${concept}': the index knows ${index.concepts.join(', ')}`,
    );
  if (!(Number.isInteger(nTrain) && nTrain >= 1))
    throw new RuleditError('bad-option', `\`nTrain\` must be a whole number >= 1, got ${nTrain}`);
  if (!(validation >= 0 && validation < 1))
    throw new RuleditError(
      'bad-option',
      `the validation fraction must be in [0, 1), got ${validation}`,
    );
  if (style.images.length < 2)
    throw new RuleditError(
      'bad-style',
      `style '${style.name}' has ${style.images.length} image; the protocol needs at least 2 ` +
        `(one for the exemplars, the others held out)`,
    );
  if (options.heldout !== undefined && !(Number.isInteger(options.heldout) && options.heldout >= 1))
    throw new RuleditError(
      'bad-option',
      `\`heldout\` must be a whole number >= 1, got ${options.heldout}`,
    );
  const withConcept = index.images.filter((e) => e.masks[concept]);
  const images = withConcept
    .filter((e) => e.label !== undefined)
    .map((e) => ({ file: e.file, label: e.label!, mask: e.masks[concept] }));
  const eligible = eligibleTargets(images, nTrain);
  let targets: number[];
  const name = (c: number) => options.classNames?.[c] ?? `class ${c}`;
  if (options.target !== undefined) {
    const n = images.filter((i) => i.label === options.target).length;
    if (n < nTrain)
      throw new RuleditError(
        'bad-target',
        `${name(options.target)} has ${n} image${n === 1 ? '' : 's'} containing '${concept}'; ` +
          `a target needs at least \`nTrain\` ${nTrain}` +
          (eligible.length ? ` (eligible: ${eligible.map((e) => e.target).join(', ')})` : ''),
      );
    targets = [options.target];
  } else targets = eligible.map((e) => e.target);
  if (!targets.length) {
    const best = eligibleTargets(images, 1)[0];
    throw new RuleditError(
      'no-target',
      `no class has ${nTrain} or more images containing '${concept}' ` +
        (best
          ? `(the most: ${best.images} of ${name(best.target)})`
          : `(no labelled image contains it)`) +
        `: lower \`nTrain\` or use a larger data set`,
    );
  }
  const manifest: TestSetManifest = {
    version: 1,
    kind: 'ruledit-testset',
    concept,
    style: { name: style.name, images: style.images },
    transformation: options.transformation ?? DEFAULT_TRANSFORM,
    dataset: index.dataset,
    ...(options.indexPath ? { index: options.indexPath } : {}),
    nTrain,
    validation,
    ...(options.heldout !== undefined ? { heldout: options.heldout } : {}),
    seed,
    images,
    cases: [],
    unlabelled: withConcept.length - images.length,
  };
  manifest.cases = targets.map((t) => ({
    ...splitCase(manifest, t, seed),
    ...(options.classNames?.[t] ? { targetName: options.classNames[t] } : {}),
  }));
  return manifest;
}

/**
 * One case's split, a pure function of the manifest's images, the target and the seed: nTrain
 * target images for training, the style image they use, and the rest of the concept images
 * divided into validation and test (the fraction taken separately from target and other classes,
 * so both appear in each split).
 */
export function splitCase(
  m: Pick<TestSetManifest, 'concept' | 'style' | 'images' | 'nTrain' | 'validation' | 'heldout'>,
  target: number,
  seed: number,
): TestCase {
  const u = rng(mix(seed, target));
  const ofTarget = m.images.flatMap((img, i) => (img.label === target ? [i] : []));
  const others = m.images.flatMap((img, i) => (img.label === target ? [] : [i]));
  if (ofTarget.length < m.nTrain)
    throw new RuleditError(
      'bad-target',
      `class ${target} has ${ofTarget.length} images containing '${m.concept}', fewer than nTrain ${m.nTrain}`,
    );
  const shuffledTarget = shuffle(ofTarget, u);
  const train = shuffledTarget.slice(0, m.nTrain);
  const styles = shuffle(
    m.style.images.map((_, i) => i),
    u,
  );
  const heldoutCount = Math.min(m.heldout ?? styles.length - 1, styles.length - 1);
  const part = (list: number[]) => {
    const s = shuffle(list, u);
    const k = Math.round(m.validation * s.length);
    return [s.slice(0, k), s.slice(k)];
  };
  const [valTarget, testTarget] = part(shuffledTarget.slice(m.nTrain));
  const [valOther, testOther] = part(others);
  const asc = (a: number[]) => [...a].sort((x, y) => x - y);
  return {
    id: `${m.concept}/${m.style.name}/${target}`,
    target,
    seed,
    sameStyle: m.style.images[styles[0]],
    heldoutStyles: asc(styles.slice(1, 1 + heldoutCount)).map((i) => m.style.images[i]),
    train: asc(train),
    validation: asc([...valTarget, ...valOther]),
    test: asc([...testTarget, ...testOther]),
  };
}

/** The case for the k-th seed of a run: the manifest's own split for k = 0, a new draw otherwise. */
export function caseForSeed(m: TestSetManifest, c: TestCase, k: number): TestCase {
  if (k === 0) return c;
  return { ...splitCase(m, c.target, c.seed + k), targetName: c.targetName };
}

/** A test image as the harness scores it: which image, which style image, and its role. */
export interface CaseVariant extends Variant {
  label: number;
  target: boolean;
  styleRole: 'same' | 'heldout';
}

/** The train exemplars (same style image) and the validation and test variants of a case. */
export function caseVariants(
  m: TestSetManifest,
  c: TestCase,
): { train: Variant[]; validation: CaseVariant[]; test: CaseVariant[] } {
  const variants = (indices: number[]) =>
    indices.flatMap((i) => {
      const img = m.images[i];
      const base = {
        image: img.file,
        mask: img.mask,
        label: img.label,
        target: img.label === c.target,
      };
      return [
        { ...base, style: c.sameStyle, styleRole: 'same' as const },
        ...c.heldoutStyles.map((s) => ({ ...base, style: s, styleRole: 'heldout' as const })),
      ];
    });
  return {
    train: c.train.map((i) => ({
      image: m.images[i].file,
      mask: m.images[i].mask,
      style: c.sameStyle,
    })),
    validation: variants(c.validation),
    test: variants(c.test),
  };
}

export async function saveTestSet(
  m: TestSetManifest,
  path: string,
  options: { force?: boolean } = {},
): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(m, null, 1) + '\n', { force: options.force });
}

export async function loadTestSet(path: string): Promise<TestSetManifest> {
  let m: TestSetManifest;
  try {
    m = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR')
      throw new RuleditError('not-found', `test set manifest not found: ${path}`);
    throw new RuleditError('bad-testset', `${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (
    m?.kind !== 'ruledit-testset' ||
    m.version !== 1 ||
    !Array.isArray(m.images) ||
    !Array.isArray(m.cases) ||
    !Array.isArray(m.style?.images)
  )
    throw new RuleditError(
      'bad-testset',
      `${path} is not a version 1 test set manifest (make one with 'ruledit testset')`,
    );
  for (const c of m.cases) {
    const seen = new Set<number>();
    for (const i of [...c.train, ...c.validation, ...c.test]) {
      if (!Number.isInteger(i) || i < 0 || i >= m.images.length)
        throw new RuleditError(
          'bad-testset',
          `${path}: case ${c.id} refers to image ${i}, which is not listed`,
        );
      if (seen.has(i))
        throw new RuleditError(
          'bad-testset',
          `${path}: case ${c.id} puts image ${i} in two splits`,
        );
      seen.add(i);
    }
    if (c.heldoutStyles.includes(c.sameStyle))
      throw new RuleditError('bad-testset', `${path}: case ${c.id} holds out its own style image`);
  }
  return m;
}

/** A short content hash of a manifest: results of different test sets never mix. */
export function testSetHash(m: TestSetManifest): string {
  return sha256(JSON.stringify(m)).slice(0, 16);
}

function shuffle<T>(list: T[], u: () => number): T[] {
  const a = [...list];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(u() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** A 32-bit seed per (seed, target), so adding a target never changes another's split. */
function mix(seed: number, target: number): number {
  return createHash('sha256').update(`${seed}:${target}`).digest().readUInt32LE(0);
}
