// The library's public entry point: plain functions over plain data (see README).
export { RuleditError, isRuleditError } from './errors.ts';
export {
  loadModel,
  parseModel,
  serializeModel,
  modelInputs,
  type OnnxModel,
} from './onnx/model.ts';
export { listBlocks, findBlock, type Block, type Activation } from './onnx/blocks.ts';
export { withTaps } from './onnx/taps.ts';
export { readWeight, readBias, patchBlock, type WeightPatch } from './onnx/weights.ts';
export { saveModel } from './onnx/save.ts';
export { readHistory, appendHistory, HISTORY_KEY, type EditRecord } from './onnx/history.ts';
export { GraphBuilder } from './onnx/build.ts';
export { Runner, type RunResult, type Tapped } from './runtime/session.ts';
export { capture, tensorShapes, type Captured } from './runtime/capture.ts';
export { batches, type Batch } from './data/batches.ts';
export { openDataset, type Dataset, type DatasetItem } from './data/dataset.ts';
export { decodeImage, readRgb } from './data/image.ts';
export {
  loadPreprocess,
  parsePreprocess,
  cropBox,
  type PreprocessSpec,
} from './data/preprocess.ts';
export { evaluate } from './eval/evaluate.ts';
export { Accuracy, topK, softmax, type AccuracyReport } from './eval/accuracy.ts';
export { loadLabels } from './data/labels.ts';
export {
  loadExemplar,
  loadExemplars,
  type Exemplar,
  type Replacement,
} from './concepts/exemplar.ts';
export { type GuardOptions, type GuardReport } from './edit/guard.ts';
export { transformImage, type Transformation } from './concepts/transform-image.ts';
export { loadStyle, type Style } from './concepts/style.ts';
export { loadStylizer, type Stylizer, type StylizeOptions } from './concepts/stylize.ts';
export { loadSegmenter, type Segmenter, type SegmentOptions } from './concepts/segment.ts';
export {
  buildConceptIndex,
  loadConceptIndex,
  conceptCounts,
  conceptIndexFile,
  type ConceptIndex,
  type ConceptEntry,
  type MaskSource,
} from './concepts/concept-index.ts';
export {
  loadCoco,
  segmentationMask,
  polygonRle,
  rleFromString,
  rleToString,
  decodeRle,
} from './data/coco.ts';
export { edit, type EditOptions, type EditResult } from './edit/edit.ts';
export { rewrite, type RewriteOptions, type RewriteReport } from './edit/rewrite.ts';
export { keyStatistics, type KeyStats } from './edit/stats.ts';
export { whitening, type Whitening } from './edit/whiten.ts';
export { contextDirection, type Direction } from './edit/direction.ts';
export { revertLast, activeEdits } from './edit/record.ts';
export { finetune, type FinetuneOptions, type FinetuneReport } from './edit/finetune.ts';
export { gradEngine, type GradBackend, type GradEngine } from './grad/engine.ts';
export { importTail, type Tail } from './grad/tail.ts';
export {
  errorsCorrected,
  fourWay,
  cleanAccuracyDrop,
  selectSetting,
  type CaseImage,
  type ErrorsCorrected,
  type Candidate,
} from './eval/protocol.ts';
export { writeReport, type WriteReportOptions, type WrittenReport } from './report/write.ts';
export { readReport, parseReport, reportToJson } from './report/json.ts';
export { renderHtml } from './report/html.ts';
export { toCsv } from './report/csv.ts';
export { inputToPng, maskToPng } from './report/images.ts';
export { screenshotReport, type PageCheck } from './report/screenshot.ts';
export type {
  ReportData,
  ReportExample,
  ReportTable,
  MethodResult,
  DiscoveryCell,
} from './report/types.ts';
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
} from './concepts/testset.ts';
export {
  transformedFiles,
  withStyleImage,
  type StyleTransform,
  type Variant,
} from './concepts/transformed.ts';
export { runHarness, type HarnessOptions, type HarnessRun } from './eval/harness.ts';
export {
  methodSpec,
  DEFAULT_GRIDS,
  type MethodSpec,
  type MethodKind,
  type Setting,
} from './eval/methods.ts';
export { aggregate, loadResults, type ResultLine, type MethodSummary } from './eval/results.ts';
export { predictFiles } from './eval/predictions.ts';
export {
  discoverRules,
  discoveryCells,
  type Discovery,
  type DiscoveryRow,
  type DiscoveryOptions,
} from './eval/discover.ts';
export {
  scene,
  sceneMask,
  replaceConcept,
  CLASSES,
  CONCEPTS,
  VEHICLES,
  SEEDS,
  type Scene,
  type SceneOptions,
} from './synth/world.ts';
export { styleTexture, STYLES, STYLE_IMAGES } from './synth/styles.ts';
export { trainSceneModel, type TrainOptions } from './synth/train.ts';
export { sceneModelToOnnx } from './synth/export.ts';
export { predictScenes } from './synth/predict.ts';
export { writeScenes, writeStyles } from './synth/write.ts';
export { BUILTIN_MODEL } from './synth/builtin.ts';
export { runSceneDemo, type SceneDemoOptions, type SceneDemoResult } from './demo/scenes.ts';
export { createServer, type ServerOptions } from './server/app.ts';
