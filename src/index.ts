// `ruledit`: the core. Load a classifier, edit it with one exemplar (the rewrite or a fine-tuning
// baseline), evaluate it, revert, save. Plain functions over plain data (README, "Library").
// The protocol, reports, the scene world, the server and the ONNX toolkit are subpaths.
export { RuleditError, isRuleditError } from './errors.js';
export {
  loadClassifier,
  saveClassifier,
  classifierOf,
  classifierBytes,
  type Classifier,
  type ClassifierSources,
} from './classifier.js';
export { PRESETS, type PresetName } from './data/presets.js';
export type { PreprocessSpec } from './data/preprocess.js';
export type { OnnxModel } from './onnx/model.js';
export { listBlocks, findBlock, type Block } from './onnx/blocks.js';
export { openDataset, type Dataset, type DatasetItem } from './data/dataset.js';
export {
  loadExemplar,
  loadExemplars,
  type Exemplar,
  type Replacement,
} from './concepts/exemplar.js';
export {
  edit,
  type EditOptions,
  type EditResult,
  type RewriteEdit,
  type FinetuneEdit,
  type RetrainLastEdit,
} from './edit/edit.js';
export {
  METHODS,
  METHOD_NAMES,
  type MethodName,
  type MethodSpec,
  type OptionSpec,
  type Setting,
} from './edit/methods.js';
export type { RewriteReport } from './edit/rewrite.js';
export type { FinetuneReport } from './edit/finetune.js';
export type { RetrainLastReport } from './edit/retrain-last.js';
export type { GuardOptions, GuardReport } from './edit/guard.js';
export { Traces } from './runtime/block-trace.js';
export { evaluate, type EvaluateOptions } from './eval/evaluate.js';
export type { AccuracyReport } from './eval/accuracy.js';
export { revertLast, activeEdits } from './edit/record.js';
export { readHistory, type EditRecord } from './onnx/history.js';
