import type { AttributeProto, GraphProto, NodeProto, TensorProto } from './proto.js';
import { toNumber } from './proto.js';
import { tensorToNumbers } from './tensor.js';

/** Ops that pass their first input through unchanged at inference time. */
const PASS_THROUGH = new Set(['Identity', 'Dropout']);

/**
 * Read-only index over a graph: who produces and who consumes each tensor, and which tensors are
 * constants. Real exporters put weights behind Identity or Constant nodes; `constant()` and
 * `next()` see through those quirks.
 */
export class GraphView {
  readonly nodes: NodeProto[];
  private readonly producers = new Map<string, NodeProto>();
  private readonly consumerMap = new Map<string, NodeProto[]>();
  private readonly initializers = new Map<string, TensorProto>();
  private readonly outputs: Set<string>;

  constructor(readonly graph: GraphProto) {
    this.nodes = graph.node ?? [];
    for (const t of graph.initializer ?? []) this.initializers.set(t.name ?? '', t);
    for (const node of this.nodes) {
      for (const o of node.output ?? []) this.producers.set(o, node);
      for (const i of node.input ?? []) {
        if (!i) continue;
        const list = this.consumerMap.get(i) ?? [];
        if (!list.includes(node)) list.push(node);
        this.consumerMap.set(i, list);
      }
    }
    this.outputs = new Set((graph.output ?? []).map((o) => o.name ?? ''));
  }

  producer(tensor: string): NodeProto | undefined {
    return this.producers.get(tensor);
  }

  consumers(tensor: string): NodeProto[] {
    return this.consumerMap.get(tensor) ?? [];
  }

  isGraphOutput(tensor: string): boolean {
    return this.outputs.has(tensor);
  }

  /** The initializer (or Constant node value) behind a tensor name, through Identity chains. */
  constant(tensor: string): TensorProto | undefined {
    const source = this.source(tensor);
    const init = this.initializers.get(source);
    if (init) return init;
    const node = this.producers.get(source);
    if (node?.opType === 'Constant') return attribute(node, 'value')?.t ?? undefined;
    return undefined;
  }

  /** Where the stored tensor behind `tensor` lives: an initializer name or a Constant node. */
  constantHolder(tensor: string): { initializer: TensorProto } | { node: NodeProto } | undefined {
    const source = this.source(tensor);
    const init = this.initializers.get(source);
    if (init) return { initializer: init };
    const node = this.producers.get(source);
    return node?.opType === 'Constant' ? { node } : undefined;
  }

  /** Follow Identity/Dropout producers back to the tensor that really holds the data. */
  source(tensor: string): string {
    let name = tensor;
    for (let node = this.producers.get(name); node && PASS_THROUGH.has(node.opType ?? '');) {
      name = node.input![0];
      node = this.producers.get(name);
    }
    return name;
  }

  /**
   * The single real consumer of a tensor, skipping pass-through nodes, with the tensor name it
   * reads. Undefined when the tensor fans out or is a graph output: then it is not private to a
   * block.
   */
  next(tensor: string): { node: NodeProto; input: string } | undefined {
    let name = tensor;
    for (;;) {
      if (this.isGraphOutput(name)) return undefined;
      const users = this.consumers(name);
      if (users.length !== 1) return undefined;
      const node = users[0];
      if (!PASS_THROUGH.has(node.opType ?? '')) return { node, input: name };
      if ((node.output ?? []).slice(1).some((o) => o && this.consumers(o).length > 0))
        return undefined;
      name = node.output![0];
    }
  }

  /** Numbers held by a constant input (e.g. Clip's min/max in opset >= 11), if constant. */
  constantNumbers(tensor: string | undefined): number[] | undefined {
    if (!tensor) return undefined;
    const t = this.constant(tensor);
    return t ? tensorToNumbers(t) : undefined;
  }
}

export function attribute(node: NodeProto, name: string): AttributeProto | undefined {
  return (node.attribute ?? []).find((a) => a.name === name);
}

export function intAttr(node: NodeProto, name: string, fallback: number): number {
  const a = attribute(node, name);
  return a?.i != null ? toNumber(a.i) : fallback;
}

export function intsAttr(node: NodeProto, name: string): number[] | undefined {
  const a = attribute(node, name);
  return a?.ints?.length ? a.ints.map(toNumber) : undefined;
}

export function textAttr(node: NodeProto, name: string): string | undefined {
  const s = attribute(node, name)?.s;
  return s && s.length ? new TextDecoder().decode(s) : undefined;
}

/** HardSigmoid's clip(alpha x + beta, 0, 1), with ONNX's defaults. */
/**
 * A Clip's bounds (missing ones infinite); undefined when a bound is computed, not constant.
 * Opsets before 11 keep them as attributes, later ones as inputs.
 */
export function clipBounds(
  view: GraphView,
  node: NodeProto,
): { min: number; max: number } | undefined {
  const ins = node.input ?? [];
  if (attribute(node, 'min') || attribute(node, 'max'))
    return { min: floatAttr(node, 'min', -Infinity), max: floatAttr(node, 'max', Infinity) };
  const min = ins[1] ? view.constantNumbers(ins[1])?.[0] : -Infinity;
  const max = ins[2] ? view.constantNumbers(ins[2])?.[0] : Infinity;
  return min === undefined || max === undefined ? undefined : { min, max };
}

export function hardSigmoidParams(node: NodeProto): { alpha: number; beta: number } {
  return { alpha: floatAttr(node, 'alpha', 0.2), beta: floatAttr(node, 'beta', 0.5) };
}

export function floatAttr(node: NodeProto, name: string, fallback: number): number {
  const a = attribute(node, name);
  return a?.f != null && a.type === 1 ? a.f : fallback;
}
