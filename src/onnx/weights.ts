import { RuleditError } from '../errors.ts';
import type { Block } from './blocks.ts';
import { GraphView } from './graph.ts';
import type { OnnxModel } from './model.ts';
import { modelFromProto } from './model.ts';
import type { GraphProto, NodeProto, TensorProto } from './proto.ts';
import { floatTensor, tensorToFloat32 } from './tensor.ts';

/** A block's weight in canonical layout: [out, in, kh, kw] or [out, in]. */
export function readWeight(model: OnnxModel, block: Block): Float32Array {
  const stored = tensorToFloat32(storedTensor(model.proto.graph!, block.weight, block));
  return block.storage === 'in-out'
    ? transpose2d(stored, block.weightShape[1], block.weightShape[0])
    : stored;
}

/** A block's bias (length out), zeros when the block has none. */
export function readBias(model: OnnxModel, block: Block): Float32Array {
  if (!block.bias) return new Float32Array(block.weightShape[0]);
  return tensorToFloat32(storedTensor(model.proto.graph!, block.bias, block));
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
  checkFinite(patch.weight, `new weight of '${block.name}'`);
  const graph = model.proto.graph!;
  const view = new GraphView(graph);
  const [out, inp] = block.weightShape;
  const stored = block.storage === 'in-out' ? transpose2d(patch.weight, out, inp) : patch.weight;
  const replacements = new Map<string, Float32Array>([[block.weight, stored]]);
  let nodes = graph.node ?? [];
  let extraInits: TensorProto[] = [];

  if (patch.bias) {
    checkFinite(patch.bias, `new bias of '${block.name}'`);
    if (patch.bias.length !== out) {
      throw new RuleditError(
        'bad-shape',
        `bias of '${block.name}' needs ${out} values, got ${patch.bias.length}`,
      );
    }
    if (block.bias) {
      replacements.set(block.bias, patch.bias);
    } else if (block.op === 'MatMul') {
      throw new RuleditError('unsupported', `layer '${block.name}' (MatMul) has no bias to patch`);
    } else {
      // Conv and Gemm take an optional third input: add one, named so it cannot collide.
      const names = new Set((graph.initializer ?? []).map((t) => t.name));
      let name = `${block.name}.ruledit_bias`;
      for (let i = 1; names.has(name); i++) name = `${block.name}.ruledit_bias${i}`;
      extraInits = [floatTensor(name, [out], patch.bias)];
      const linear = nodes.find((n) => n.output?.[0] === block.linearOutput)!;
      nodes = nodes.map((n) =>
        n === linear ? { ...n, input: [...n.input!.slice(0, 2), name] } : n,
      );
    }
  }

  const initializers = [...(graph.initializer ?? [])];
  for (const [tensorName, data] of replacements) {
    const holder = view.constantHolder(tensorName);
    const users = view.consumers(tensorName).length;
    if (!holder)
      throw new RuleditError('unsupported', `'${tensorName}' of '${block.name}' is not a constant`);
    if (users > 1) {
      throw new RuleditError(
        'unsupported',
        `'${tensorName}' is shared by ${users} nodes; editing it would change more than '${block.name}'`,
      );
    }
    if ('initializer' in holder) {
      const old = holder.initializer;
      const i = initializers.indexOf(old);
      initializers[i] = floatTensor(old.name!, old.dims as number[], data);
      expectFloat(old, block);
    } else {
      const node = holder.node;
      const old = node.attribute!.find((a) => a.name === 'value')!.t!;
      expectFloat(old, block);
      const replaced: NodeProto = {
        ...node,
        attribute: node.attribute!.map((a) =>
          a.name === 'value'
            ? { ...a, t: floatTensor(old.name ?? '', old.dims as number[], data) }
            : a,
        ),
      };
      nodes = nodes.map((n) => (n === node ? replaced : n));
    }
  }
  const newGraph: GraphProto = {
    ...graph,
    node: nodes,
    initializer: [...initializers, ...extraInits],
  };
  return { ...modelFromProto({ ...model.proto, graph: newGraph }), path: model.path };
}

function storedTensor(graph: GraphProto, name: string, block: Block): TensorProto {
  const t = new GraphView(graph).constant(name);
  if (!t) throw new RuleditError('unsupported', `'${name}' of '${block.name}' is not a constant`);
  return t;
}

function expectFloat(t: TensorProto, block: Block): void {
  if ((t.dataType ?? 1) !== 1) {
    throw new RuleditError(
      'unsupported',
      `weights of '${block.name}' are stored as data type ${t.dataType}; only float32 weights can be patched`,
    );
  }
}

function checkFinite(a: Float32Array, what: string): void {
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i]))
      throw new RuleditError('not-finite', `${what} has a non-finite value at ${i}`);
  }
}

/** [rows, cols] -> [cols, rows]. */
export function transpose2d(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}
