// `ruledit/protocol`: the evaluation protocol (docs/method.md section 9): concept masks and
// transformations, test sets, the harness that compares methods, validated selection and rule
// discovery.
export { transformImage, type Transformation } from './concepts/transform-image.js';
export { loadStyle, type Style } from './concepts/style.js';
export { loadStylizer, type Stylizer, type StylizeOptions } from './concepts/stylize.js';
export { loadSegmenter, type Segmenter, type SegmentOptions } from './concepts/segment.js';
export {
  buildConceptIndex,
  loadConceptIndex,
  conceptCounts,
  conceptIndexFile,
  type ConceptIndex,
  type ConceptEntry,
  type MaskSource,
} from './concepts/concept-index.js';
export { loadCoco, segmentationMask } from './data/coco.js';
export {
  buildTestSet,
  splitCase,
  caseForSeed,
  caseVariants,
  eligibleTargets,
  loadTestSet,
  saveTestSet,
  type TestSetManifest,
  type TestCase,
  type TestSetImage,
  type TestSetOptions,
} from './concepts/testset.js';
export {
  transformedFiles,
  withStyleImage,
  type StyleTransform,
  type Variant,
} from './concepts/transformed.js';
export {
  runHarness,
  planHarness,
  inProcess,
  type HarnessOptions,
  type HarnessRun,
  type HarnessExecutor,
  type LineJob,
  type TrialJob,
} from './eval/harness.js';
export type { TrialOutcome, TrialContextOptions } from './eval/trial.js';
export { methodGrid, parseGridFile, type MethodGrid } from './eval/grid.js';
export { namedGrid, GRID_NAMES, PAPER_SCHEDULES, type GridName } from './eval/named-grids.js';
export {
  aggregate,
  loadResults,
  type ResultLine,
  type MethodResult,
  type MethodSummary,
} from './eval/results.js';
export {
  errorsCorrected,
  fourWay,
  cleanAccuracyDrop,
  selectSetting,
  type CaseImage,
  type ErrorsCorrected,
  type Candidate,
} from './eval/protocol.js';
export {
  rewriteGrid,
  chooseRewrite,
  type RewriteSetting,
  type SelectionRow,
} from './eval/select.js';
export {
  contextMatch,
  STRONGEST_SHARE,
  type ContextMatch,
  type ContextMatchOptions,
  type MatchedImage,
} from './edit/match.js';
export {
  discoverRules,
  discoveryCells,
  type Discovery,
  type DiscoveryCell,
  type DiscoveryRow,
  type DiscoveryOptions,
} from './eval/discover.js';
