// `ruledit/synth`: the synthetic scene world, its styles, the trainer and ONNX export of the
// built-in model, and the demo scenario on it.
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
} from './synth/world.js';
export { styleTexture, STYLES, STYLE_IMAGES } from './synth/styles.js';
export { trainSceneModel, type TrainOptions } from './synth/train.js';
export { sceneModelToOnnx } from './synth/export.js';
export { predictScenes } from './synth/predict.js';
export { writeScenes, writeStyles } from './synth/write.js';
export { referenceScenes } from './synth/reference.js';
export { BUILTIN_MODEL } from './synth/builtin.js';
export { runSceneDemo, type SceneDemoOptions, type SceneDemoResult } from './demo/scenes.js';
