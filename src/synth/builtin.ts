import { fileURLToPath } from 'node:url';

/** The built-in scene model shipped with the package (trained by `ruledit synth train`). */
export const BUILTIN_MODEL = fileURLToPath(
  new URL('../../models/scenes/model.onnx', import.meta.url),
);

export const SCENE_PREPROCESS = {
  input: 'image',
  output: 'logits',
  layout: 'NCHW',
  size: 64,
  crop_fraction: 1,
  resize: 'bilinear',
  mean: [0.5, 0.5, 0.5],
  std: [0.5, 0.5, 0.5],
  labels: 'labels.txt',
};
