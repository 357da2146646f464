import { dirname, resolve } from 'node:path';
import { RuleditError } from '../errors.js';
import { readInput } from '../io/read-input.js';

export type Resize = 'bilinear' | 'bicubic' | 'nearest' | 'lanczos3';

/** How a model wants its images: crop, resize, normalize, layout (file format: preprocess.json). */
export interface PreprocessSpec {
  /** Names of the model's image input and logits output, when the file gives them. */
  input?: string;
  output?: string;
  layout: 'NCHW' | 'NHWC';
  /** Target [height, width]. */
  size: [number, number];
  /** Centre crop of this fraction of the short side before resizing (1 = whole short side). */
  cropFraction: number;
  resize: Resize;
  mean: [number, number, number];
  std: [number, number, number];
  /** Absolute path of the class names file, when the spec names one. */
  labels?: string;
}

/**
 * The largest image side ruledit accepts, for a spec, a model's declared input or `--size`: one
 * 4096x4096 RGB image is 200 MB of float32, about 80 times a 224-pixel ImageNet input; a declared
 * 1000000x1000000 input would otherwise fail deep in an allocation with no word about the cause.
 */
export const MAX_SIDE = 4096;

const KEYS = [
  'input',
  'output',
  'layout',
  'size',
  'crop_fraction',
  'resize',
  'mean',
  'std',
  'labels',
];
const RESIZE: Resize[] = ['bilinear', 'bicubic', 'nearest', 'lanczos3'];

export async function loadPreprocess(path: string): Promise<PreprocessSpec> {
  const text = (await readInput(path, 'preprocessing spec')).toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new RuleditError('bad-preprocess', `${path} is not valid JSON: ${(e as Error).message}`);
  }
  return parsePreprocess(json, path);
}

/** Validate a preprocess.json object; every wrong field is named in the error. */
export function parsePreprocess(json: unknown, where: string): PreprocessSpec {
  const fail = (msg: string): never => {
    throw new RuleditError('bad-preprocess', `${where}: ${msg}`);
  };
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    fail('expected a JSON object');
  const o = json as Record<string, unknown>;
  const unknown = Object.keys(o).filter((k) => !KEYS.includes(k));
  if (unknown.length) fail(`unknown field(s) ${unknown.join(', ')}; allowed: ${KEYS.join(', ')}`);
  const text = (k: string) => {
    if (o[k] !== undefined && typeof o[k] !== 'string') fail(`'${k}' must be a string`);
    return o[k] as string | undefined;
  };
  const triple = (k: string, fallback: number): [number, number, number] => {
    const v = o[k] ?? [fallback, fallback, fallback];
    if (
      !Array.isArray(v) ||
      v.length !== 3 ||
      !v.every((x) => typeof x === 'number' && Number.isFinite(x))
    ) {
      fail(`'${k}' must be a list of 3 numbers (one per RGB channel)`);
    }
    return v as [number, number, number];
  };
  const layout = o.layout ?? 'NCHW';
  if (layout !== 'NCHW' && layout !== 'NHWC')
    fail(`'layout' must be "NCHW" or "NHWC", got ${JSON.stringify(layout)}`);
  const sizeRaw = o.size;
  const size = typeof sizeRaw === 'number' ? [sizeRaw, sizeRaw] : sizeRaw;
  if (
    !Array.isArray(size) ||
    size.length !== 2 ||
    !size.every((s) => Number.isInteger(s) && s > 0 && s <= MAX_SIDE)
  ) {
    fail(
      `'size' must be a whole number from 1 to ${MAX_SIDE} or [height, width] of such, got ${JSON.stringify(sizeRaw)}`,
    );
  }
  const crop = o.crop_fraction ?? 1;
  if (typeof crop !== 'number' || !(crop > 0 && crop <= 1))
    fail(`'crop_fraction' must be a number in (0, 1], got ${JSON.stringify(crop)}`);
  const resize = o.resize ?? 'bilinear';
  if (!RESIZE.includes(resize as Resize))
    fail(`'resize' must be one of ${RESIZE.join(', ')}, got ${JSON.stringify(resize)}`);
  const mean = triple('mean', 0);
  const std = triple('std', 1);
  if (std.some((s) => s === 0)) fail(`'std' must not contain 0 (it divides every pixel)`);
  const labels = text('labels');
  return {
    input: text('input'),
    output: text('output'),
    layout: layout as PreprocessSpec['layout'],
    size: size as [number, number],
    cropFraction: crop as number,
    resize: resize as Resize,
    mean,
    std,
    ...(labels ? { labels: resolve(dirname(where), labels) } : {}),
  };
}

/** The input shape of a batch of n images: [n, 3, h, w] (NCHW) or [n, h, w, 3] (NHWC). */
export function batchDims(spec: Pick<PreprocessSpec, 'layout' | 'size'>, n: number): number[] {
  const [h, w] = spec.size;
  return spec.layout === 'NCHW' ? [n, 3, h, w] : [n, h, w, 3];
}

/** The spec in preprocess.json form (labels left out: a path means nothing elsewhere). */
export function specToJson(spec: PreprocessSpec): Record<string, unknown> {
  const { input, output, layout, size, cropFraction, resize, mean, std } = spec;
  return { input, output, layout, size, crop_fraction: cropFraction, resize, mean, std };
}

/**
 * The centre crop taken from a width x height image: `cropFraction` of the short side, with the
 * target's aspect ratio. Exported because masks must be cropped with exactly the same geometry.
 */
export function cropBox(
  width: number,
  height: number,
  spec: Pick<PreprocessSpec, 'size' | 'cropFraction'>,
): { left: number; top: number; width: number; height: number } {
  const [th, tw] = spec.size;
  const side = Math.min(width, height) * spec.cropFraction;
  // As 'resize the short side, then centre-crop': the crop's short side is `side`, its long side
  // follows the target's aspect ratio, shrunk as a whole if that runs past the image.
  const unit = side / Math.min(th, tw);
  const scale = Math.min(1, width / (unit * tw), height / (unit * th));
  const [cw, ch] = [unit * tw * scale, unit * th * scale];
  const w = Math.max(1, Math.min(width, Math.round(cw)));
  const h = Math.max(1, Math.min(height, Math.round(ch)));
  return {
    left: Math.round((width - w) / 2),
    top: Math.round((height - h) / 2),
    width: w,
    height: h,
  };
}
