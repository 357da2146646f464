import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadLabels } from '../data/labels.ts';
import {
  loadPreprocess,
  parsePreprocess,
  specToJson,
  type PreprocessSpec,
} from '../data/preprocess.ts';
import { readMetadata, withMetadata } from '../onnx/metadata.ts';
import { saveModel } from '../onnx/save.ts';
import { RuleditError } from '../errors.ts';
import { loadModel, modelInputs, type OnnxModel } from '../onnx/model.ts';

export interface ModelAssets {
  model: OnnxModel;
  spec?: PreprocessSpec;
  labels?: string[];
}

/**
 * A model with the preprocessing spec and class names the user gave, or the `preprocess.json`
 * and `labels.txt` found next to the model file.
 */
export async function loadModelAssets(
  modelPath: string,
  flags: { preprocess?: string; labels?: string },
  needSpec: boolean,
): Promise<ModelAssets> {
  const model = await loadModel(modelPath);
  const beside = (name: string) => {
    const p = join(dirname(model.path!), name);
    return existsSync(p) ? p : undefined;
  };
  // Models written by ruledit carry their spec and labels, so an edited model works anywhere.
  const embeddedSpec = readMetadata(model, SPEC_KEY);
  const embeddedLabels = readMetadata(model, LABELS_KEY);
  const specPath = flags.preprocess ?? beside('preprocess.json');
  if (needSpec && !specPath && !embeddedSpec) {
    throw new RuleditError(
      'no-preprocess',
      `no preprocessing spec: pass --preprocess FILE or put a preprocess.json next to ${modelPath}`,
    );
  }
  const where = specPath ?? `${modelPath} (embedded preprocessing)`;
  const spec = specPath
    ? await loadPreprocess(specPath)
    : embeddedSpec
      ? parsePreprocess(JSON.parse(embeddedSpec), where)
      : undefined;
  if (needSpec && spec) checkSpecFits(model, spec, where);
  const labelsPath = flags.labels ?? spec?.labels ?? beside('labels.txt');
  const labels = labelsPath ? await loadLabels(labelsPath) : embeddedLabels?.split('\n');
  return { model, spec, labels };
}

const SPEC_KEY = 'ruledit.preprocess';
const LABELS_KEY = 'ruledit.labels';

/** Save a model written by ruledit with its spec and labels embedded in its metadata. */
export async function saveWithAssets(
  model: OnnxModel,
  assets: { spec?: PreprocessSpec; labels?: string[] },
  out: string,
  force: boolean,
): Promise<void> {
  let m = model;
  if (assets.spec) m = withMetadata(m, SPEC_KEY, JSON.stringify(specToJson(assets.spec)));
  if (assets.labels) m = withMetadata(m, LABELS_KEY, assets.labels.join('\n'));
  await saveModel({ ...m, path: model.path }, out, { force });
}

/** The model's own input size, when its graph declares a static one: [h, w]. */
function staticSize(model: OnnxModel, nhwc: boolean): [number, number] | undefined {
  const dims = modelInputs(model.proto)[0]?.dims ?? [];
  const hw = nhwc ? [dims[1], dims[2]] : [dims[2], dims[3]];
  return hw.every((d) => typeof d === 'number' && d > 0) ? (hw as [number, number]) : undefined;
}

/** A spec whose size or layout contradicts the model's declared input would fail deep in ONNX Runtime. */
function checkSpecFits(model: OnnxModel, spec: PreprocessSpec, where: string): void {
  const fixed = staticSize(model, spec.layout === 'NHWC');
  if (fixed && (fixed[0] !== spec.size[0] || fixed[1] !== spec.size[1])) {
    throw new RuleditError(
      'bad-preprocess',
      `${where}: size ${spec.size.join('x')} (layout ${spec.layout}) does not fit the model, whose input is ${fixed.join('x')}`,
    );
  }
}

/** The input shape for one image: --size, else the model's static size, else the spec's, else 224. */
export function inputDims(model: OnnxModel, spec?: PreprocessSpec, size?: number): number[] {
  const dims = modelInputs(model.proto)[0]?.dims ?? [];
  const nhwc = spec ? spec.layout === 'NHWC' : dims[3] === 3 && dims[1] !== 3;
  const [h, w] = size ? [size, size] : (staticSize(model, nhwc) ?? spec?.size ?? [224, 224]);
  return nhwc ? [1, h, w, 3] : [1, 3, h, w];
}
