import type { Exemplar } from '../concepts/exemplar.js';
import type { DatasetItem } from '../data/dataset.js';
import { areaResize } from '../data/mask.js';
import type { PreprocessSpec } from '../data/preprocess.js';
import { RuleditError } from '../errors.js';
import type { Block } from '../onnx/blocks.js';
import type { OnnxModel } from '../onnx/model.js';
import { imageOf, type Tapped } from '../runtime/session.js';
import { contextDirection, type Direction } from './direction.js';
import { METHODS } from './methods.js';
import { keyStatistics, type KeyStats, type StatsOptions } from './stats.js';
import { whitening, type Whitening } from './whiten.js';

const D = METHODS.rewrite.options;

/**
 * The first stage of the rewrite and of the context match: the block's key statistics (given, or
 * computed on the reference images `referenceSplit` leaves to them) and their whitening.
 */
export async function keyWhitening(
  model: OnnxModel,
  block: Block,
  spec: PreprocessSpec,
  options: Omit<StatsOptions, 'onBatch' | 'batchSize'> & {
    stats?: KeyStats;
    items?: DatasetItem[];
    whiteningFloor?: number;
  },
): Promise<{ stats: KeyStats; white: Whitening }> {
  const { stats: given, items, whiteningFloor, ...statsOptions } = options;
  if (!given && !items?.length)
    throw new RuleditError('no-stats', 'key statistics need reference images: give `statsData`');
  const stats = given ?? (await keyStatistics(model, block, items!, spec, statsOptions));
  if (stats.block !== block.name)
    throw new RuleditError(
      'bad-stats',
      `the statistics are for '${stats.block}', not '${block.name}'`,
    );
  return {
    stats,
    white: whitening(stats.C, stats.dim, whiteningFloor ?? D.whiteningFloor.default),
  };
}

/** Each exemplar's mask area-averaged onto an output grid. */
export function maskOn(exemplar: Exemplar, spec: PreprocessSpec, height: number, width: number) {
  const [h, w] = spec.size;
  return areaResize(exemplar.mask, w, h, width, height);
}

/**
 * The direction d of the rewrite (docs/method.md section 2) from the exemplars' keys (channel-major,
 * one image per exemplar) weighted by their masks on the key grid.
 */
export function exemplarDirection(
  keys: Tapped,
  exemplars: Exemplar[],
  spec: PreprocessSpec,
  Z: Float64Array,
  rank: number,
): { direction: Direction; weights: Float32Array[]; grid: { height: number; width: number } } {
  const [dim, height = 1, width = 1] = keys.dims.slice(1);
  const weights = exemplars.map((e) => maskOn(e, spec, height, width));
  const direction = contextDirection(
    exemplars.map((_, e) => ({ keys: imageOf(keys, e, exemplars.length), weights: weights[e] })),
    Z,
    dim,
    rank,
  );
  return { direction, weights, grid: { height, width } };
}
