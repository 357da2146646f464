import type { Exemplar } from '../concepts/exemplar.js';
import { compose, fillTexture, parseColour, textureImage } from '../concepts/transform.js';
import { modelPixels, normalizePixels } from '../data/image.js';
import type { PreprocessSpec } from '../data/preprocess.js';
import { RuleditError } from '../errors.js';
import { softmax, topK } from '../runtime/logits.js';
import { batchDims } from '../data/preprocess.js';
import type { OnnxModel } from '../onnx/model.js';
import { Runner } from '../runtime/session.js';
import { sha256 } from '../io/digest.js';
import type { Prediction } from './wire.js';
import { rawPng } from '../data/png.js';

/**
 * The page works on images at model resolution: what the model sees is what the user paints on,
 * so a mask needs no resampling and x' is exactly the model's input.
 */
export interface ModelImage {
  /** 8-bit RGB, HWC, spec.size. */
  rgb: Buffer;
  width: number;
  height: number;
  name: string;
}

export async function toModelImage(
  bytes: Buffer,
  name: string,
  spec: PreprocessSpec,
): Promise<ModelImage> {
  const { pixels } = await modelPixels(bytes, name, spec);
  return { rgb: pixels, width: spec.size[1], height: spec.size[0], name };
}

export async function pngDataUrl(rgb: Uint8Array, width: number, height: number): Promise<string> {
  return pngUrl(await rawPng(rgb, width, height));
}

/** PNG bytes as a data URL the page can show. */
export const pngUrl = (png: Buffer) => `data:image/png;base64,${png.toString('base64')}`;

/** A built-in style (all its images, or the one `variant`), an uploaded texture, or a fill. */
export type WebReplacement =
  { style: string; variant?: number } | { texture: string } | { fill: string };

/** x' = x (1 - m) + T m at model resolution, as 8-bit-range floats (HWC). */
export async function transformPixels(
  image: ModelImage,
  mask: Float32Array,
  texture: { fill: string } | { bytes: Buffer },
): Promise<Float32Array> {
  const { width: w, height: h } = image;
  if (mask.length !== w * h)
    throw new RuleditError(
      'bad-mask',
      `the mask has ${mask.length} values; the image is ${w}x${h} (${w * h})`,
    );
  const t =
    'fill' in texture
      ? fillTexture(parseColour(texture.fill), w, h)
      : await textureImage(texture.bytes, w, h, 'stretch');
  return compose(Float32Array.from(image.rgb), t, mask);
}

export function makeExemplar(
  image: ModelImage,
  mask: Float32Array,
  transformed: Float32Array,
  spec: PreprocessSpec,
  replacementId: string,
): Exemplar {
  return {
    original: normalizePixels(image.rgb, spec),
    transformed: normalizePixels(transformed, spec),
    mask,
    size: [image.height, image.width],
    hashes: {
      image: sha256(image.rgb),
      mask: sha256(new Uint8Array(mask.buffer, mask.byteOffset, mask.byteLength)),
      replacement: sha256(Buffer.from(replacementId)),
    },
  };
}

/** The model's top-5 on each normalized input (one ONNX Runtime session for all). */
export async function top5(
  model: OnnxModel,
  inputs: Float32Array[],
  spec: PreprocessSpec,
  labels: string[] | undefined,
): Promise<Prediction[][]> {
  const runner = await Runner.create(model, { threads: 1 });
  try {
    const out: Prediction[][] = [];
    for (const x of inputs) {
      const { logits } = await runner.run(x, batchDims(spec, 1));
      const probs = softmax(logits.data);
      out.push(
        topK(logits.data, 5).map((c) => ({
          class: c,
          label: labels?.[c] ?? String(c),
          p: 100 * probs[c],
        })),
      );
    }
    return out;
  } finally {
    await runner.release();
  }
}
