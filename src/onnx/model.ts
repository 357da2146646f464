import { sha256 } from '../io/digest.js';
import { dirname, isAbsolute, resolve } from 'node:path';
import { RuleditError } from '../errors.js';
import { readInput } from '../io/read-input.js';
import { onnx, type ModelProto, type TensorProto, toNumber } from './proto.js';

/** A parsed ONNX model, held fully in memory (external data is read in, so it is self-contained). */
export interface OnnxModel {
  proto: ModelProto;
  /** The file it came from, if any: never written to by ruledit. */
  path?: string;
  /** sha256 of the serialized model as loaded; keys caches of statistics. */
  hash: string;
}

export async function loadModel(path: string): Promise<OnnxModel> {
  const abs = resolve(path);
  const bytes = await readInput(abs, 'model file');
  const proto = parseModel(bytes, path);
  await inlineExternalData(proto, dirname(abs), path);
  return { proto, path: abs, hash: sha256(bytes) };
}

/** Parse ONNX bytes, telling a truncated or foreign file apart from a bug. */
export function parseModel(bytes: Uint8Array, where = 'model'): ModelProto {
  let proto: ModelProto;
  try {
    proto = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new RuleditError(
      'not-onnx',
      `${where} is not a readable ONNX model (truncated or another format): ${(e as Error).message}`,
    );
  }
  const graph = proto.graph;
  if (!graph || !graph.node?.length || !graph.output?.length || !proto.irVersion) {
    throw new RuleditError(
      'not-onnx',
      `${where} is not an ONNX model: it has no graph with nodes and outputs`,
    );
  }
  return proto;
}

/** A model made in memory; its hash is computed when first asked (serializing it is not free). */
export function modelFromProto(proto: ModelProto): OnnxModel {
  let hash: string | undefined;
  return {
    proto,
    get hash() {
      return (hash ??= sha256(serializeModel(proto)));
    },
  };
}

export function serializeModel(proto: ModelProto): Uint8Array {
  return onnx.ModelProto.encode(proto).finish();
}

/**
 * Models over 2 GB keep weights in side files (data_location = EXTERNAL). We read them into
 * raw_data so every later stage (taps, patching, ONNX Runtime from bytes) sees one model.
 */
async function inlineExternalData(proto: ModelProto, dir: string, where: string): Promise<void> {
  const files = new Map<string, Buffer>();
  for (const t of allTensors(proto)) {
    if (t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) continue;
    const info = new Map((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
    const location = info.get('location');
    if (!location || isAbsolute(location) || location.split(/[\\/]/).includes('..')) {
      throw new RuleditError(
        'bad-external-data',
        `${where}: tensor '${t.name}' has external data location '${location}'; expected a file next to the model`,
      );
    }
    let file = files.get(location);
    if (!file) {
      file = await readInput(resolve(dir, location), `${where}: external data file of '${t.name}'`);
      files.set(location, file);
    }
    const offset = Number(info.get('offset') ?? 0);
    const length = info.has('length') ? Number(info.get('length')) : file.length - offset;
    if (offset + length > file.length) {
      throw new RuleditError(
        'bad-external-data',
        `${where}: external data of '${t.name}' runs past the end of '${location}' (truncated file?)`,
      );
    }
    t.rawData = new Uint8Array(file.subarray(offset, offset + length));
    t.dataLocation = onnx.TensorProto.DataLocation.DEFAULT;
    t.externalData = [];
  }
}

function* allTensors(proto: ModelProto): Generator<TensorProto> {
  const graph = proto.graph!;
  yield* graph.initializer ?? [];
  for (const node of graph.node ?? []) {
    for (const a of node.attribute ?? []) if (a.t) yield a.t;
  }
}

/** Input names a caller must feed: graph inputs that are not initializers (an old exporter quirk). */
export function modelInputs(proto: ModelProto): { name: string; dims: (number | string)[] }[] {
  const inits = new Set((proto.graph!.initializer ?? []).map((t) => t.name));
  return (proto.graph!.input ?? [])
    .filter((v) => !inits.has(v.name))
    .map((v) => ({
      name: v.name ?? '',
      dims: (v.type?.tensorType?.shape?.dim ?? []).map((d) =>
        d.dimParam ? d.dimParam : d.dimValue != null ? toNumber(d.dimValue) : '?',
      ),
    }));
}
