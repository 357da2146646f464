import { RuleditError } from '../errors.js';
import type { Block } from './blocks.js';
import { GraphView } from './graph.js';
import type { OnnxModel } from './model.js';
import { modelFromProto } from './model.js';
import type { GraphProto, NodeProto } from './proto.js';
import { floatTensor, tensorToFloat32 } from './tensor.js';

/** A block's weight in canonical layout: [out, in, kh, kw] or [out, in]. */
export function readWeight(model: OnnxModel, block: Block): Float32Array {
  const stored = readTensor(model, block.weight);
  return block.storage === 'in-out'
    ? transpose2d(stored, block.weightShape[1], block.weightShape[0])
    : stored;
}

/** A canonical [out, in, ...] weight in the layout the graph stores it in (the inverse of readWeight). */
export function storedWeight(block: Block, weight: Float32Array): Float32Array {
  const [out, inp] = block.weightShape;
  return block.storage === 'in-out' ? transpose2d(weight, out, inp) : weight;
}

/** The shape a block's weight is stored in (the dims of storedWeight's result). */
export function storedShape(block: Block): number[] {
  const [out, inp, ...rest] = block.weightShape;
  return block.storage === 'in-out' ? [inp, out, ...rest] : block.weightShape;
}

/** A block's bias (length out), zeros when the block has none. */
export function readBias(model: OnnxModel, block: Block): Float32Array {
  if (!block.bias) return new Float32Array(block.weightShape[0]);
  return readTensor(model, block.bias);
}

export interface WeightPatch {
  /** Canonical layout, same shape as block.weightShape. */
  weight: Float32Array;
  bias?: Float32Array;
}

/**
 * A new model whose only change is this block's weight (and bias). Every other tensor is shared
 * with the input model, so its bytes are written back unchanged.
 */
export function patchBlock(model: OnnxModel, block: Block, patch: WeightPatch): OnnxModel {
  if (!block.editable) {
    throw new RuleditError(
      'not-editable',
      `layer '${block.name}' is not editable: ${block.reason}`,
    );
  }
  const out = block.weightShape[0];
  const replacements = new Map<string, Float32Array>([
    [block.weight, storedWeight(block, patch.weight)],
  ]);
  let base = model;
  if (patch.bias) {
    if (patch.bias.length !== out) {
      throw new RuleditError(
        'bad-shape',
        `bias of '${block.name}' needs ${out} values, got ${patch.bias.length}`,
      );
    }
    if (block.bias) replacements.set(block.bias, patch.bias);
    else base = withBias(model, block, patch.bias);
  }
  return patchTensors(base, replacements, `'${block.name}'`);
}

/** Conv and Gemm take an optional third input: add one, named so it cannot collide. */
function withBias(model: OnnxModel, block: Block, bias: Float32Array): OnnxModel {
  if (block.op === 'MatMul')
    throw new RuleditError('unsupported', `layer '${block.name}' (MatMul) has no bias to patch`);
  checkFinite(bias, `new bias of '${block.name}'`);
  const graph = model.proto.graph!;
  const names = new Set((graph.initializer ?? []).map((t) => t.name));
  let name = `${block.name}.ruledit_bias`;
  for (let i = 1; names.has(name); i++) name = `${block.name}.ruledit_bias${i}`;
  const node = graph.node!.map((n) =>
    n.output?.[0] === block.linearOutput ? { ...n, input: [...n.input!.slice(0, 2), name] } : n,
  );
  const initializer = [...(graph.initializer ?? []), floatTensor(name, [bias.length], bias)];
  return {
    ...modelFromProto({ ...model.proto, graph: { ...graph, node, initializer } }),
    path: model.path,
  };
}

/**
 * Replace the data of float constants (initializers or Constant nodes, by the tensor name a node
 * reads, through Identity), keeping their shapes. A constant read by several nodes is refused:
 * changing it would change more than `what`.
 */
export function patchTensors(
  model: OnnxModel,
  replacements: Map<string, Float32Array>,
  what: string,
): OnnxModel {
  const graph = model.proto.graph!;
  const view = new GraphView(graph);
  const initializers = [...(graph.initializer ?? [])];
  let nodes = graph.node ?? [];
  for (const [tensorName, data] of replacements) {
    checkFinite(data, `new value of '${tensorName}' (${what})`);
    const holder = view.constantHolder(tensorName);
    const users = view.consumers(tensorName).length;
    if (!holder)
      throw new RuleditError('unsupported', `'${tensorName}' of ${what} is not a constant`);
    if (users > 1) {
      throw new RuleditError(
        'unsupported',
        `'${tensorName}' is shared by ${users} nodes; editing it would change more than ${what}`,
      );
    }
    const old =
      'initializer' in holder
        ? holder.initializer
        : holder.node.attribute!.find((a) => a.name === 'value')!.t!;
    if ((old.dataType ?? 1) !== 1) {
      throw new RuleditError(
        'unsupported',
        `'${tensorName}' is stored as data type ${old.dataType}; only float32 tensors can be patched`,
      );
    }
    const replaced = floatTensor(old.name ?? '', old.dims as number[], data);
    if ('initializer' in holder) {
      initializers[initializers.indexOf(old)] = replaced;
    } else {
      const node = holder.node;
      const changed: NodeProto = {
        ...node,
        attribute: node.attribute!.map((a) => (a.name === 'value' ? { ...a, t: replaced } : a)),
      };
      nodes = nodes.map((n) => (n === node ? changed : n));
    }
  }
  const newGraph: GraphProto = { ...graph, node: nodes, initializer: initializers };
  return { ...modelFromProto({ ...model.proto, graph: newGraph }), path: model.path };
}

/** The stored data of a float constant, by the tensor name a node reads. */
export function readTensor(model: OnnxModel, name: string): Float32Array {
  const t = new GraphView(model.proto.graph!).constant(name);
  if (!t) throw new RuleditError('unsupported', `'${name}' is not a constant`);
  return tensorToFloat32(t);
}

function checkFinite(a: Float32Array, what: string): void {
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i]))
      throw new RuleditError('not-finite', `${what} has a non-finite value at ${i}`);
  }
}

/** [rows, cols] -> [cols, rows]. */
function transpose2d(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}
