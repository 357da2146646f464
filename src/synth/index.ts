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
} from './world.js';
export { styleTexture, STYLES, STYLE_IMAGES } from './styles.js';
export { trainSceneModel, type TrainOptions } from './train.js';
export { sceneModelToOnnx } from './export.js';
export { predictScenes } from './predict.js';
export { writeScenes, writeStyles } from './write.js';
export { referenceScenes } from './reference.js';
export { BUILTIN_MODEL } from './builtin.js';
export { runSceneDemo, type SceneDemoOptions, type SceneDemoResult } from '../demo/scenes.js';
