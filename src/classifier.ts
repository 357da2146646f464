import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadLabels } from './data/labels.js';
import { isPreset, presetSpec, PRESETS } from './data/presets.js';
import {
  MAX_SIDE,
  loadPreprocess,
  parsePreprocess,
  specToJson,
  type PreprocessSpec,
} from './data/preprocess.js';
import { RuleditError } from './errors.js';
import { readMetadata, withMetadata } from './onnx/metadata.js';
import { loadModel, modelInputs, serializeModel, type OnnxModel } from './onnx/model.js';
import { DataType, toNumber } from './onnx/proto.js';
import { tensorToFloat32 } from './onnx/tensor.js';
import { saveModel } from './onnx/save.js';

/**
 * What every stage needs to run a model on images: the ONNX graph, how it wants its pixels, and
 * (when known) the names of its classes. Plain data: it is the first argument of `edit`,
 * `evaluate`, the harness and the demo.
 */
export interface Classifier {
  model: OnnxModel;
  spec: PreprocessSpec;
  labels?: string[];
}

export interface ClassifierSources {
  /** A spec, a preprocess.json path, or a preset name (`imagenet-torchvision`, `inception`). */
  preprocess?: PreprocessSpec | string;
  /** Class names, or a labels.txt path (one name per line). */
  labels?: string[] | string;
}

/**
 * A model with its preprocessing and labels: the ones given, else those embedded by ruledit
 * (`saveClassifier`), else a preprocess.json / labels.txt beside the model file.
 */
export async function loadClassifier(
  path: string,
  given: ClassifierSources = {},
): Promise<Classifier> {
  const model = await loadModel(path);
  const spec = await findPreprocess(model, given.preprocess);
  if (!spec)
    throw new RuleditError(
      'no-preprocess',
      `no preprocessing for ${path}: give \`preprocess\` (a preprocess.json or a preset: ${Object.keys(PRESETS).join(', ')}) or put a preprocess.json next to the model`,
    );
  return classifierOf(model, spec, await findLabels(model, given.labels ?? spec.labels));
}

/** A classifier from parts, checked against the graph: input size, [N, classes] logits, finite weights, labels. */
export function classifierOf(
  model: OnnxModel,
  spec: PreprocessSpec,
  labels?: string[],
): Classifier {
  const where = model.path ?? 'the model';
  const fixed = staticSize(model, spec.layout === 'NHWC');
  if (fixed && (fixed[0] !== spec.size[0] || fixed[1] !== spec.size[1]))
    throw new RuleditError(
      'bad-preprocess',
      `${where}: preprocessing size ${spec.size.join('x')} (layout ${spec.layout}) does not fit the model, whose input is ${fixed.join('x')}`,
    );
  checkLogits(model, spec.output, where);
  checkWeights(model, where);
  const classes = outputClasses(model);
  if (labels && classes !== undefined && labels.length !== classes)
    throw new RuleditError(
      'bad-labels',
      `${where} has ${classes} classes but its labels name ${labels.length}`,
    );
  return { model, spec, labels };
}

/** Save with the spec and labels embedded in the model's metadata, so it runs anywhere as is. */
export async function saveClassifier(
  classifier: Classifier,
  out: string,
  options: { force?: boolean; protect?: (string | undefined)[] } = {},
): Promise<void> {
  await saveModel(withAssets(classifier), out, options);
}

/** The bytes saveClassifier writes (a download, a message to a worker). */
export function classifierBytes(classifier: Classifier): Uint8Array {
  return serializeModel(withAssets(classifier).proto);
}

function withAssets({ model, spec, labels }: Classifier): OnnxModel {
  let m = withMetadata(model, SPEC_KEY, JSON.stringify(specToJson(spec)));
  if (labels) m = withMetadata(m, LABELS_KEY, labels.join('\n'));
  return { ...m, path: model.path };
}

const SPEC_KEY = 'ruledit.preprocess';
const LABELS_KEY = 'ruledit.labels';

/** The model's preprocessing if one is given, embedded or beside it; undefined if none is. */
export async function findPreprocess(
  model: OnnxModel,
  given?: PreprocessSpec | string,
): Promise<PreprocessSpec | undefined> {
  if (typeof given === 'object') return given;
  if (given !== undefined && isPreset(given)) {
    const nhwc = modelLayout(model) === 'NHWC';
    return presetSpec(given, {
      layout: nhwc ? 'NHWC' : 'NCHW',
      size: staticSize(model, nhwc),
    });
  }
  if (given !== undefined) return loadPreprocess(given);
  const embedded = readMetadata(model, SPEC_KEY);
  if (embedded) {
    const where = `${model.path ?? 'model'} (embedded preprocessing, metadata '${SPEC_KEY}')`;
    let json: unknown;
    try {
      json = JSON.parse(embedded);
    } catch (e) {
      throw new RuleditError(
        'bad-preprocess',
        `${where} is not JSON (${(e as Error).message}): give \`preprocess\``,
      );
    }
    return parsePreprocess(json, where);
  }
  const beside = besideModel(model, 'preprocess.json');
  return beside ? loadPreprocess(beside) : undefined;
}

async function findLabels(
  model: OnnxModel,
  given?: string[] | string,
): Promise<string[] | undefined> {
  if (Array.isArray(given)) return given;
  if (given !== undefined) return loadLabels(given);
  const embedded = readMetadata(model, LABELS_KEY);
  if (embedded !== undefined) return embedded.split('\n');
  const beside = besideModel(model, 'labels.txt');
  return beside ? loadLabels(beside) : undefined;
}

function besideModel(model: OnnxModel, name: string): string | undefined {
  if (!model.path) return undefined;
  const p = join(dirname(model.path), name);
  return existsSync(p) ? p : undefined;
}

/** NHWC when the graph's input ends in 3 channels and does not start with them. */
function modelLayout(model: OnnxModel): PreprocessSpec['layout'] {
  const dims = modelInputs(model.proto)[0]?.dims ?? [];
  return dims[3] === 3 && dims[1] !== 3 ? 'NHWC' : 'NCHW';
}

/**
 * The model's own input size, when its graph declares a static one: [h, w]. A side declared 0 or
 * beyond MAX_SIDE cannot be fed (ONNX Runtime would fail on the first run with a trace), so it is
 * refused here; a negative one is how some exporters write "any size".
 */
function staticSize(model: OnnxModel, nhwc: boolean): [number, number] | undefined {
  const input = modelInputs(model.proto)[0];
  const dims = input?.dims ?? [];
  const hw = nhwc ? [dims[1], dims[2]] : [dims[2], dims[3]];
  if (hw.some((d) => d === 0 || (typeof d === 'number' && d > MAX_SIDE)))
    throw new RuleditError(
      'bad-model',
      `${model.path ?? 'the model'}: its input '${input.name}' is declared [${dims.join(', ')}]: an image side must be from 1 to ${MAX_SIDE} pixels`,
    );
  return hw.every((d) => typeof d === 'number' && d > 0) ? (hw as [number, number]) : undefined;
}

/**
 * A classifier's logits are [N, classes]: a segmentation map or a feature map is refused. Every
 * stage reads the graph's first output, so a spec naming another one cannot be honoured.
 */
function checkLogits(model: OnnxModel, name: string | undefined, where: string): void {
  const out = model.proto.graph?.output?.[0];
  if (name !== undefined && out?.name !== name)
    throw new RuleditError(
      'bad-preprocess',
      `${where}: the preprocessing names the output '${name}', but the model's (first) output is '${out?.name}'`,
    );
  const dims = out?.type?.tensorType?.shape?.dim;
  if (!out || !dims || dims.length === 2) return;
  const shape = dims.map((d) => d.dimParam || (d.dimValue != null ? toNumber(d.dimValue) : '?'));
  throw new RuleditError(
    'not-classifier',
    `${where}: output '${out.name}' has shape [${shape.join(', ')}]; a classifier's logits are [N, classes] (a segmentation or feature model cannot be edited as a classifier)`,
  );
}

/**
 * NaN or infinite weights make every prediction NaN and every solve meaningless, and so does a
 * BatchNormalization variance below 0 (its square root): both refused on load.
 */
function checkWeights(model: OnnxModel, where: string): void {
  const graph = model.proto.graph;
  for (const t of graph?.initializer ?? []) {
    const type = t.dataType ?? DataType.FLOAT;
    if (type !== DataType.FLOAT && type !== DataType.DOUBLE) continue;
    const data = tensorToFloat32(t);
    const bad = data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0)
      throw new RuleditError(
        'bad-weights',
        `${where}: tensor '${t.name}' holds ${data[bad]} at index ${bad} (${data.filter((v) => !Number.isFinite(v)).length} non-finite values): the model cannot be run or edited`,
      );
  }
  for (const node of graph?.node ?? []) {
    if (node.opType !== 'BatchNormalization') continue;
    const variance = graph!.initializer!.find((t) => t.name === node.input?.[4]);
    const data = variance ? tensorToFloat32(variance) : new Float32Array();
    const bad = data.findIndex((v) => v < 0);
    if (bad >= 0)
      throw new RuleditError(
        'bad-weights',
        `${where}: BatchNormalization '${node.name || node.output?.[0]}' has variance ${data[bad]} at channel ${bad}: a variance below 0 makes its output NaN`,
      );
  }
}

/** The number of classes, when the logits output is declared as [N, classes]. */
function outputClasses(model: OnnxModel): number | undefined {
  const dims = model.proto.graph?.output?.[0]?.type?.tensorType?.shape?.dim ?? [];
  const last = dims[1];
  return dims.length === 2 && last?.dimValue != null && !last.dimParam
    ? toNumber(last.dimValue)
    : undefined;
}

/** The input shape for one image: `size`, else the model's static size, else the spec's, else 224. */
export function inputDims(model: OnnxModel, spec?: PreprocessSpec, size?: number): number[] {
  const nhwc = spec ? spec.layout === 'NHWC' : modelLayout(model) === 'NHWC';
  const [h, w] = size ? [size, size] : (staticSize(model, nhwc) ?? spec?.size ?? [224, 224]);
  return nhwc ? [1, h, w, 3] : [1, 3, h, w];
}
