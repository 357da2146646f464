import type { Classifier } from '../classifier.js';
import { spatialBlocks } from '../edit/layer.js';
import { RuleditError } from '../errors.js';
import { methodGrid, type MethodGrid } from './grid.js';

/**
 * Grids known by name (`--grid paper`). `paper` is the large-scale study of docs/method.md
 * section 8, every method with five or six settings, chosen per case on the validation split
 * under the clean-drop budget:
 * - `rewrite-published`: the published schedule (Adam + projection, no guard, no preserve term)
 *   over the paper's (lr, steps) grid, METHOD.md section 5;
 * - `rewrite`: the default solver with its guard over the deepest three spatial blocks (`auto`
 *   and the two before it) x rank 1 and 2;
 * - `finetune-local` / `finetune-global`: the published SGD 400 steps over five learning rates
 *   around the published 1e-4 (METHOD.md names that one setting; the decades around it are ours);
 * - `retrain-last`: last-layer retraining (not in the paper) over three Adam learning rates.
 */
export const GRID_NAMES = ['paper'] as const;
export type GridName = (typeof GRID_NAMES)[number];

export const isGridName = (name: string): name is GridName =>
  (GRID_NAMES as readonly string[]).includes(name);

export const PAPER_SCHEDULES = [
  { lr: 1e-3, steps: 10_000 },
  { lr: 1e-4, steps: 20_000 },
  { lr: 1e-5, steps: 40_000 },
  { lr: 1e-6, steps: 80_000 },
  { lr: 1e-7, steps: 80_000 },
];
const FINETUNE_LRS = [1e-2, 1e-3, 1e-4, 1e-5, 1e-6];
const RETRAIN_LRS = [1e-3, 1e-4, 1e-5];

export async function namedGrid(name: string, classifier: Classifier): Promise<MethodGrid[]> {
  if (!isGridName(name))
    throw new RuleditError(
      'bad-grid',
      `unknown grid '${name}' (built in: ${GRID_NAMES.join(', ')})`,
    );
  const blocks = await spatialBlocks(classifier.model, classifier.spec, 3);
  const finetune = FINETUNE_LRS.map((lr) => ({ optimizer: 'sgd', steps: 400, lr }));
  return [
    methodGrid(
      'rewrite',
      blocks.flatMap((b) => [1, 2].map((rank) => ({ layer: b.name, rank }))),
    ),
    methodGrid(
      'rewrite',
      PAPER_SCHEDULES.map((s) => ({ solver: 'published', preserve: 0, maxDrop: 100, ...s })),
      'rewrite-published',
    ),
    methodGrid('finetune-local', finetune),
    methodGrid('finetune-global', finetune),
    methodGrid(
      'retrain-last',
      RETRAIN_LRS.map((lr) => ({ lr })),
    ),
  ];
}
