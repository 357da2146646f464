import type { Classifier } from '../classifier.js';
import type { Exemplar } from '../concepts/exemplar.js';
import { batches } from '../data/batches.js';
import type { DatasetItem } from '../data/dataset.js';
import { batchDims } from '../data/preprocess.js';
import { RuleditError } from '../errors.js';
import { DEFAULT_BATCH, imageOf, Runner } from '../runtime/session.js';
import { channelMajor } from '../runtime/tokens.js';
import { exemplarDirection, keyWhitening } from './context.js';
import type { Direction } from './direction.js';
import { referenceSplit } from './guard.js';
import { pickBlock } from './layer.js';
import { METHODS } from './methods.js';
import type { KeyStats, StatsOptions } from './stats.js';

/** The statistics' options (batchSize and onBatch are the search's), and the rewrite's own. */
export interface ContextMatchOptions extends StatsOptions {
  layer?: string;
  rank?: number;
  /** Reference images: every 4th is left out, as `edit` leaves it to the guard; the rest give C. */
  statsData?: DatasetItem[];
  stats?: KeyStats;
  whiteningFloor?: number;
}

export interface MatchedImage {
  file: string;
  /**
   * The image's strongest match: the mean of its best STRONGEST_SHARE of key positions (at
   * least one), so that one stray key does not rank an image (on the scene world's snowy roads
   * against plain scenes, AUC 0.965 against 0.941 for the single best position).
   */
  score: number;
  /** Match per key position, row-major height x width. */
  map: Float32Array;
}

export interface ContextMatch {
  block: string;
  /** The key grid the maps live on. */
  grid: { height: number; width: number };
  direction: Direction;
  /** Images, best match first. */
  ranking: MatchedImage[];
}

/**
 * Where a rule's context is found before it is rewritten (Bau et al.'s context match): the
 * direction d the rewrite would edit along (docs/method.md section 2, whitened keys of the
 * exemplars' new look), and for every key of other images its projection on d. A position
 * scoring 1 matches d as much as the exemplars' masked keys do on average.
 */
export async function contextMatch(
  classifier: Classifier,
  exemplars: Exemplar[],
  items: DatasetItem[],
  options: ContextMatchOptions = {},
): Promise<ContextMatch> {
  const { model, spec } = classifier;
  if (!exemplars.length) throw new RuleditError('bad-exemplar', 'no exemplar given');
  if (!items.length) throw new RuleditError('bad-dataset', 'no images to match');
  if (!options.stats && !options.statsData?.length)
    throw new RuleditError('no-stats', 'key statistics need reference images: give `statsData`');
  const block = await pickBlock(model, spec, options.layer);
  // The statistics the rewrite would use: those of the reference images it leaves to them.
  const { white } = await keyWhitening(model, block, spec, {
    stats: options.stats,
    items: options.stats ? undefined : referenceSplit(options.statsData, {}).stats,
    threads: options.threads,
    cacheDir: options.cacheDir,
    refresh: options.refresh,
    onWarning: options.onWarning,
    whiteningFloor: options.whiteningFloor,
  });
  const runner = await Runner.create(model, { taps: [block.key], threads: options.threads });
  try {
    const ex = await runner.runImages(
      exemplars.map((e) => e.transformed),
      (n) => batchDims(spec, n),
    );
    const keys = channelMajor(ex.taps[block.key]);
    const dim = keys.dims[1];
    const { direction, weights, grid } = exemplarDirection(
      keys,
      exemplars,
      spec,
      white.Z,
      options.rank ?? METHODS.rewrite.options.rank.default,
    );
    const { height, width } = grid;
    const positions = height * width;
    const project = projector(direction, dim, positions);
    // The exemplars' own masked match is the unit: 1 = as much as the concept painted.
    let unit = 0;
    let total = 0;
    exemplars.forEach((_, e) => {
      const m = project(imageOf(keys, e, exemplars.length));
      weights[e].forEach((wt, p) => ((unit += wt * m[p]), (total += wt)));
    });
    unit /= total;
    if (!(unit > 0))
      throw new RuleditError(
        'bad-exemplar',
        "the exemplars' masked keys do not project on their own direction (is the mask empty at this block?)",
      );
    const ranking: MatchedImage[] = [];
    for await (const b of batches(items, spec, { batchSize: options.batchSize ?? DEFAULT_BATCH })) {
      const out = await runner.run(b.data, b.dims);
      const tapped = channelMajor(out.taps[block.key]);
      b.items.forEach((item, i) => {
        const map = project(imageOf(tapped, i, b.items.length)).map((v) => v / unit);
        ranking.push({ file: item.file, score: strongest(map), map });
      });
      options.onBatch?.(b.items.length);
    }
    ranking.sort((a, b) => b.score - a.score);
    return { block: block.name, grid: { height, width }, direction, ranking };
  } finally {
    await runner.release();
  }
}

/** Share of an image's key positions its score averages, best first. */
export const STRONGEST_SHARE = 0.1;

function strongest(map: Float32Array): number {
  const sorted = Float32Array.from(map).sort().reverse();
  const k = Math.max(1, Math.round(sorted.length * STRONGEST_SHARE));
  return sorted.subarray(0, k).reduce((a, b) => a + b, 0) / k;
}

/**
 * A key map's match per position: d . k for rank 1 (signed: the side of d the exemplars are on),
 * the length of k's projection on span(d) for higher ranks.
 */
function projector(direction: Direction, dim: number, positions: number) {
  const { d, rank } = direction;
  return (keys: Float32Array) => {
    const out = new Float32Array(positions);
    for (let p = 0; p < positions; p++) {
      let sq = 0;
      let first = 0;
      for (let r = 0; r < rank; r++) {
        let dot = 0;
        for (let c = 0; c < dim; c++) dot += d[r * dim + c] * keys[c * positions + p];
        if (r === 0) first = dot;
        sq += dot * dot;
      }
      out[p] = rank === 1 ? first : Math.sqrt(sq);
    }
    return out;
  };
}
