// What the safety guard reports (guard.ts measures it). Plain types with no imports: the page's
// wire module (server/wire.ts) sends them as they are.

/** What an edit does to the guard images at one strength. */
export interface GuardFigures {
  strength: number;
  /** Decided guard images (see TIE) whose top-1 changed. */
  flips: number;
  /** Percent of the decided guard images whose top-1 changed. */
  flipRate: number;
  /** Undecided images (a tie between the original top-2) whose top-1 changed: not counted. */
  tieFlips: number;
  /** Mean over guard images of KL(p_original || p_edited), in nats. */
  meanKL: number;
  /** The clean top-1 drop (points) the edit is expected to cost (harm.ts expectedDrop): what the budget is on. */
  estimatedDrop: number;
  /** Top-1 accuracy (percent) of the edited model, when the guard images are labelled. */
  accuracy?: number;
}

export interface GuardReport extends GuardFigures {
  images: number;
  /** Guard images the original model cannot decide (top-2 within TIE): left out of the flip rate. */
  ties: number;
  /** The budget on the estimated drop, points. */
  maxDrop: number;
  /**
   * The temperature the original model's probabilities were calibrated with on the labelled guard
   * images (harm.ts fitTemperature); 1 without labels: the model's probabilities are trusted.
   */
  temperature: number;
  /** Where the guard images came from: held out of the reference images, or given. */
  source: 'held-out reference images' | 'given';
  /** Top-1 accuracy (percent) of the original model on labelled guard images. */
  accuracyBefore?: number;
  /** Every strength tried, in order (the first is the solved edit at full strength). */
  trials: GuardFigures[];
}
