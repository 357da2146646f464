import ort from 'onnxruntime-node';
import { resolve } from 'node:path';
import sharp from 'sharp';
import type { RgbImage } from '../data/image.js';
import { RuleditError } from '../errors.js';
import { loadModel, modelInputs, serializeModel } from '../onnx/model.js';

/**
 * Neural arbitrary style transfer with a user-supplied ONNX model: (content, style) -> stylized.
 *
 * What is assumed of the model, and how it is read from the graph:
 * - exactly two float image inputs, 4-D, batch 1; the one whose name contains 'content' is the
 *   content, the one containing 'style' the style; otherwise the first input is the content;
 * - layout per input: NCHW if dimension 1 is 3, NHWC if dimension 3 is 3 (NCHW when unclear);
 * - a fixed height/width is honoured (the image is stretched to it); a free one takes the content
 *   image's own size, or `styleSize` (default 256 x 256) for the style;
 * - pixel values in [0, 1] (`range: 255` for models that take and give 0..255);
 * - the first output is the stylized image in the same range, any size (it is resized back to
 *   the content's size), layout read from its shape the same way.
 */
export interface StylizeOptions {
  range?: 1 | 255;
  /** [height, width] of the style input when the model leaves it free. */
  styleSize?: [number, number];
  threads?: number;
}

export interface Stylizer {
  /** The stylized content image: RGB HWC floats 0..255 at the content's size. */
  run(content: RgbImage, style: RgbImage): Promise<Float32Array>;
  release(): Promise<void>;
}

interface Port {
  name: string;
  nhwc: boolean;
  /** Fixed [h, w], or undefined where the model leaves them free. */
  size?: [number, number];
}

export async function loadStylizer(
  modelPath: string,
  options: StylizeOptions = {},
): Promise<Stylizer> {
  const model = await loadModel(modelPath);
  const inputs = modelInputs(model.proto);
  if (inputs.length !== 2)
    throw new RuleditError(
      'unsupported-model',
      `${modelPath} has ${inputs.length} input(s) (${inputs.map((i) => i.name).join(', ')}); a ` +
        `stylization model takes two images, content and style`,
    );
  const named = (word: string) => inputs.findIndex((i) => i.name.toLowerCase().includes(word));
  let [c, s] = [named('content'), named('style')];
  if (c < 0 || s < 0 || c === s) [c, s] = [0, 1];
  const content = port(inputs[c], modelPath);
  const style = port(inputs[s], modelPath);
  const range = options.range ?? 1;
  const styleSize = options.styleSize ?? [256, 256];
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(serializeModel(model.proto), {
      intraOpNumThreads: options.threads ?? 0,
      interOpNumThreads: 1,
      logSeverityLevel: 3,
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
  } catch (e) {
    throw new RuleditError(
      'bad-model',
      `ONNX Runtime cannot load ${modelPath}: ${(e as Error).message.split('\n')[0]}`,
    );
  }
  const output = session.outputNames[0];
  return {
    async run(x, y) {
      const [ch, cw] = content.size ?? [x.height, x.width];
      const [sh, sw] = style.size ?? styleSize;
      const feeds = {
        [content.name]: await tensor(x, ch, cw, content.nhwc, range),
        [style.name]: await tensor(y, sh, sw, style.nhwc, range),
      };
      let result;
      try {
        result = await session.run(feeds, [output]);
      } catch (e) {
        throw new RuleditError(
          'bad-model',
          `the stylization model failed: ${(e as Error).message.split('\n')[0]}`,
        );
      }
      return toImage(result[output], content.nhwc, range, x.width, x.height);
    },
    release: () => session.release(),
  };
}

const cache = new Map<string, Promise<Stylizer>>();

/** One session per model and options for the life of the process (test sets call it per image). */
export function sharedStylizer(modelPath: string, options: StylizeOptions = {}): Promise<Stylizer> {
  const key = `${resolve(modelPath)}\0${JSON.stringify(options)}`;
  let s = cache.get(key);
  if (!s) {
    s = loadStylizer(modelPath, options);
    cache.set(key, s);
    // A failed load is not cached: the user may fix the file and call again.
    s.catch(() => cache.delete(key));
  }
  return s;
}

function port(input: { name: string; dims: (number | string)[] }, where: string): Port {
  const d = input.dims;
  if (d.length !== 4)
    throw new RuleditError(
      'unsupported-model',
      `${where}: input '${input.name}' has shape ${JSON.stringify(d)}; expected a 4-D image ` +
        `(1x3xHxW or 1xHxWx3)`,
    );
  const nhwc = d[3] === 3 && d[1] !== 3;
  const [h, w] = nhwc ? [d[1], d[2]] : [d[2], d[3]];
  const fixed = typeof h === 'number' && h > 0 && typeof w === 'number' && w > 0;
  return { name: input.name, nhwc, size: fixed ? [h, w] : undefined };
}

async function tensor(
  img: RgbImage,
  h: number,
  w: number,
  nhwc: boolean,
  range: number,
): Promise<ort.Tensor> {
  const px =
    img.width === w && img.height === h
      ? img.data
      : await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
          .resize(w, h, { fit: 'fill' })
          .raw()
          .toBuffer();
  const hw = h * w;
  const scale = range / 255;
  const data = new Float32Array(3 * hw);
  for (let p = 0; p < hw; p++)
    for (let c = 0; c < 3; c++) data[nhwc ? p * 3 + c : c * hw + p] = px[p * 3 + c] * scale;
  return new ort.Tensor('float32', data, nhwc ? [1, h, w, 3] : [1, 3, h, w]);
}

async function toImage(
  t: ort.Tensor,
  inputNhwc: boolean,
  range: number,
  width: number,
  height: number,
): Promise<Float32Array> {
  const d = t.dims;
  if (d.length !== 4 || d[0] !== 1 || (d[1] !== 3 && d[3] !== 3))
    throw new RuleditError(
      'bad-model',
      `the stylization model returned shape ${JSON.stringify(d)}; expected 1x3xHxW or 1xHxWx3`,
    );
  const nhwc = d[1] === 3 && d[3] === 3 ? inputNhwc : d[3] === 3;
  const [h, w] = nhwc ? [d[1], d[2]] : [d[2], d[3]];
  const data = t.data as Float32Array;
  const hw = h * w;
  const scale = 255 / range;
  const out = new Float32Array(3 * hw);
  for (let p = 0; p < hw; p++)
    for (let c = 0; c < 3; c++) {
      const v = data[nhwc ? p * 3 + c : c * hw + p] * scale;
      if (Number.isNaN(v))
        throw new RuleditError('not-finite', 'the stylization model produced NaN pixels');
      out[p * 3 + c] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  if (w === width && h === height) return out;
  const bytes = Uint8Array.from(out, (v) => Math.round(v));
  const resized = await sharp(bytes, { raw: { width: w, height: h, channels: 3 } })
    .resize(width, height, { fit: 'fill' })
    .raw()
    .toBuffer();
  return Float32Array.from(resized);
}
