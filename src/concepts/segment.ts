import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import sharp from 'sharp';
import { normalizePixels, readRgb } from '../data/image.js';
import { loadLabels } from '../data/labels.js';
import { parsePreprocess, type PreprocessSpec } from '../data/preprocess.js';
import { RuleditError } from '../errors.js';
import { loadModel } from '../onnx/model.js';
import { Runner } from '../runtime/session.js';

/**
 * Concept masks from a user's semantic segmentation model (ONNX, one image input, logits
 * N x C x H x W out), with its labels.txt (C lines) and preprocess.json beside it. The whole image
 * is stretched to the model's size (no crop: a mask must cover the whole image); a label whose
 * name is 'background' is not a concept.
 */
export interface SegmentOptions {
  /** A concept is kept where its softmax probability is >= this (default 0.5). */
  threshold?: number;
  /** ...and only if it covers at least this fraction of the image (default 0.01). */
  minArea?: number;
  threads?: number;
}

export interface ConceptMask {
  /** width*height bytes, row-major, 255 = concept. */
  mask: Uint8Array;
  /** Fraction of the image's pixels inside. */
  area: number;
}

export interface Segmentation {
  width: number;
  height: number;
  masks: Map<string, ConceptMask>;
}

export interface Segmenter {
  /** Every label, index = channel of the logits. */
  labels: string[];
  /** The labels that can be concepts (background left out). */
  concepts: string[];
  threshold: number;
  minArea: number;
  segment(image: string | Buffer, only?: string[]): Promise<Segmentation>;
  release(): Promise<void>;
}

const BACKGROUND = /^(__)?background(__)?$/i;
export const isBackground = (label: string) => BACKGROUND.test(label);
// Keys a segmentation preprocess.json may carry beyond the classifier's (informative only).
const DESCRIPTIVE = ['task', 'output_layout'];

/** Threshold and minimum area with their defaults, checked. */
export function segmentLimits(options: SegmentOptions): { threshold: number; minArea: number } {
  const threshold = options.threshold ?? 0.5;
  const minArea = options.minArea ?? 0.01;
  if (!(threshold > 0 && threshold <= 1))
    throw new RuleditError('bad-option', `threshold must be in (0, 1], got ${threshold}`);
  if (!(minArea >= 0 && minArea <= 1))
    throw new RuleditError('bad-option', `minimum area must be in [0, 1], got ${minArea}`);
  return { threshold, minArea };
}

export async function loadSegmenter(
  modelPath: string,
  options: SegmentOptions = {},
): Promise<Segmenter> {
  const { threshold, minArea } = segmentLimits(options);
  const { spec, labels, labelsPath } = await segmentationAssets(modelPath);
  const model = await loadModel(modelPath);
  const runner = await Runner.create(model, { threads: options.threads });
  const concepts = labels.filter((l) => !isBackground(l));
  const [h, w] = spec.size;
  return {
    labels,
    concepts,
    threshold,
    minArea,
    async segment(image, only) {
      const rgb = await readRgb(image);
      const pixels = await sharp(rgb.data, {
        raw: { width: rgb.width, height: rgb.height, channels: 3 },
      })
        .resize(w, h, { fit: 'fill', kernel: KERNEL[spec.resize] })
        .raw()
        .toBuffer();
      const input = normalizePixels(pixels, spec);
      const dims = spec.layout === 'NCHW' ? [1, 3, h, w] : [1, h, w, 3];
      const { logits } = await runner.run(input, dims);
      if (logits.dims.length !== 4 || logits.dims[1] !== labels.length)
        throw new RuleditError(
          'bad-model',
          `the segmentation model returned ${JSON.stringify(logits.dims)}; expected ` +
            `[1, ${labels.length}, H, W] (one channel per line of ${labelsPath})`,
        );
      const keep = new Set(only ?? concepts);
      const channels = labels.flatMap((l, i) => (keep.has(l) && !isBackground(l) ? [i] : []));
      return {
        width: rgb.width,
        height: rgb.height,
        masks: await conceptMasks(logits.data, logits.dims, labels, channels, {
          width: rgb.width,
          height: rgb.height,
          threshold,
          minArea,
        }),
      };
    },
    release: () => runner.release(),
  };
}

const KERNEL = {
  bilinear: 'linear',
  bicubic: 'cubic',
  nearest: 'nearest',
  lanczos3: 'lanczos3',
} as const;

/**
 * From logits (1 x C x H x W) to the masks of `channels` at width x height: per-pixel softmax, the
 * probability map of each channel resized (bilinear) to the image, kept where it is >= threshold,
 * and dropped when its area fraction is below minArea. Probabilities are resized as 8-bit
 * (q = round(255 p)) because sharp resizes 8-bit images; the threshold is compared at that
 * precision.
 */
export async function conceptMasks(
  logits: Float32Array,
  dims: readonly number[],
  labels: string[],
  channels: number[],
  o: { width: number; height: number; threshold: number; minArea: number },
): Promise<Map<string, ConceptMask>> {
  const [, C, H, W] = dims;
  const hw = H * W;
  const max = new Float32Array(hw).fill(-Infinity);
  for (let c = 0; c < C; c++) {
    const off = c * hw;
    for (let p = 0; p < hw; p++) if (logits[off + p] > max[p]) max[p] = logits[off + p];
  }
  // p_c <= exp(l_c - max): without computing the softmax, a class whose logits stay far below
  // the maximum cannot reach the threshold, and a pixel far below cannot round to q >= 1. Only
  // the remaining pixels need the C exponentials of the softmax's sum (Math.exp over all
  // 21 x 513 x 513 logits took longer than the model itself).
  const cut = Math.ceil(o.threshold * 255);
  const reach = Math.log((cut - 0.5) / 255);
  const visible = Math.log(0.5 / 255);
  const candidates = channels.filter((c) => {
    const off = c * hw;
    for (let p = 0; p < hw; p++) if (logits[off + p] - max[p] >= reach) return true;
    return false;
  });
  const out = new Map<string, ConceptMask>();
  if (!candidates.length) return out;
  const inv = new Float64Array(hw); // 1 / sum of exp(l - max), 0 where no candidate shows
  for (let p = 0; p < hw; p++) {
    let needed = false;
    for (const c of candidates) if (logits[c * hw + p] - max[p] >= visible) needed = true;
    if (!needed) continue;
    let sum = 0;
    for (let c = 0; c < C; c++) sum += Math.exp(logits[c * hw + p] - max[p]);
    inv[p] = 1 / sum;
  }
  const prob = new Uint8ClampedArray(hw); // assignment rounds to nearest
  for (const c of candidates) {
    const off = c * hw;
    for (let p = 0; p < hw; p++)
      prob[p] = inv[p] === 0 ? 0 : Math.exp(logits[off + p] - max[p]) * inv[p] * 255;
    // Bilinear interpolation never exceeds its samples, so a resized map keeps q < cut where the
    // model's map had it everywhere.
    const full =
      W === o.width && H === o.height
        ? prob
        : await sharp(prob, { raw: { width: W, height: H, channels: 1 } })
            .resize(o.width, o.height, { fit: 'fill', kernel: 'linear' })
            .extractChannel(0)
            .raw()
            .toBuffer();
    const mask = new Uint8Array(o.width * o.height);
    let inside = 0;
    for (let p = 0; p < mask.length; p++)
      if (full[p] >= cut) {
        mask[p] = 255;
        inside++;
      }
    const area = inside / mask.length;
    if (inside > 0 && area >= o.minArea) out.set(labels[c], { mask, area });
  }
  return out;
}

/** The spec and labels beside a segmentation model: cheap, no session is created. */
export async function segmentationAssets(
  modelPath: string,
): Promise<{ spec: PreprocessSpec; labels: string[]; labelsPath: string }> {
  if (!existsSync(modelPath))
    throw new RuleditError('not-found', `segmentation model not found: ${modelPath}`);
  const spec = await segmentationSpec(join(dirname(resolve(modelPath)), 'preprocess.json'));
  const labelsPath = spec.labels ?? join(dirname(resolve(modelPath)), 'labels.txt');
  if (!existsSync(labelsPath))
    throw new RuleditError(
      'no-labels',
      `no labels for the segmentation model: put labels.txt (one class per line) next to ${modelPath}`,
    );
  return { spec, labels: await loadLabels(labelsPath), labelsPath };
}

/** A segmentation model's preprocess.json: the classifier's format, whole image (no crop). */
export async function segmentationSpec(path: string): Promise<PreprocessSpec> {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new RuleditError(
      'no-preprocess',
      `cannot read ${path}: ${(e as Error).message.split('\n')[0]} (a segmentation model needs ` +
        `its preprocess.json next to it: size, mean, std, layout)`,
    );
  }
  const rest = Object.fromEntries(Object.entries(json).filter(([k]) => !DESCRIPTIVE.includes(k)));
  const spec = parsePreprocess(rest, path);
  if (spec.cropFraction !== 1)
    throw new RuleditError(
      'bad-preprocess',
      `${path}: crop_fraction must be 1 for a segmentation model (its masks must cover the whole image)`,
    );
  return spec;
}
