import type { PreprocessSpec } from './preprocess.js';

/**
 * Preprocessing of the common exporters, so a model from torchvision or a Keras/TF-slim Inception
 * runs without a hand-written preprocess.json. The size is the model's own when its input is
 * static (see classifier.ts), else the preset's.
 */
export const PRESETS = {
  /** torchvision's ImageNet transforms: resize 256, centre crop 224, ImageNet mean/std. */
  'imagenet-torchvision': {
    layout: 'NCHW',
    size: [224, 224],
    cropFraction: 224 / 256,
    resize: 'bilinear',
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
  },
  /** Inception-style scaling of pixels to [-1, 1], 299 x 299, central 87.5%. */
  inception: {
    layout: 'NCHW',
    size: [299, 299],
    cropFraction: 0.875,
    resize: 'bilinear',
    mean: [0.5, 0.5, 0.5],
    std: [0.5, 0.5, 0.5],
  },
} as const satisfies Record<string, PreprocessSpec>;

export type PresetName = keyof typeof PRESETS;

export function isPreset(name: string): name is PresetName {
  return Object.hasOwn(PRESETS, name);
}

/** A preset as a spec, laid out and sized for a model whose input may fix either. */
export function presetSpec(
  name: PresetName,
  fits: { layout?: PreprocessSpec['layout']; size?: [number, number] } = {},
): PreprocessSpec {
  const p = PRESETS[name];
  return {
    layout: fits.layout ?? p.layout,
    size: fits.size ?? [p.size[0], p.size[1]],
    cropFraction: p.cropFraction,
    resize: p.resize,
    mean: [...p.mean],
    std: [...p.std],
  };
}
