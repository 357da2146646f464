// `ruledit/onnx`: the toolkit under the core, for users who build their own edits: parse and
// patch ONNX graphs, run them with taps on any tensor, stream batches, key statistics, the
// context direction, the TF.js gradient engine, and traces of a block (read what flows through
// it, run the network after it with replaced weights).
export {
  loadModel,
  parseModel,
  serializeModel,
  modelInputs,
  type OnnxModel,
} from './onnx/model.js';
export { listBlocks, findBlock, type Block, type Activation } from './onnx/blocks.js';
export { withTaps } from './onnx/taps.js';
export { readWeight, readBias, patchBlock, type WeightPatch } from './onnx/weights.js';
export { saveModel } from './onnx/save.js';
export { readHistory, appendHistory, HISTORY_KEY, type EditRecord } from './onnx/history.js';
export { GraphBuilder } from './onnx/build.js';
export { Runner, type RunResult, type Tapped } from './runtime/session.js';
export { capture, tensorShapes, type Captured } from './runtime/capture.js';
export { batches, type Batch } from './data/batches.js';
export { decodeImage, readRgb } from './data/image.js';
export {
  loadPreprocess,
  parsePreprocess,
  cropBox,
  type PreprocessSpec,
} from './data/preprocess.js';
export { loadLabels } from './data/labels.js';
export { keyStatistics, type KeyStats } from './edit/stats.js';
export { whitening, type Whitening } from './edit/whiten.js';
export { contextDirection, type Direction } from './edit/direction.js';
export { gradEngine, type GradBackend, type GradEngine } from './grad/engine.js';
export { importTail, type Tail } from './grad/tail.js';
export { predictFiles } from './eval/predictions.js';
export { Accuracy } from './eval/accuracy.js';
export { topK, softmax } from './runtime/logits.js';
export { Traces, BlockTrace, withTraces, type TracedImage } from './runtime/block-trace.js';
