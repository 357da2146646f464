import type { MethodGrid } from '../eval/grid.js';

/** A queued trial: which study, which case of which test set, which method and setting. */
export interface TrialJobData {
  study: string;
  testset: number;
  caseId: string;
  k: number;
  target: number;
  method: MethodGrid;
  setting: number;
  /** For the worker's log: 'case 2/6 person/snowy_ground/817 seed 3'. */
  where: string;
}

/** A job id per (study, results line, setting): a rerun adds the same ids, BullMQ keeps one of each. */
export const trialJobId = (study: string, lineKey: string, setting: number) =>
  `${study}.${lineKey}.${setting}`;
