import { RuleditError } from '../errors.js';
import { GraphView } from './graph.js';
import type { GraphProto, NodeProto } from './proto.js';

/** The nodes between some start tensors and the graph's first output, in execution order. */
export interface Subgraph {
  nodes: NodeProto[];
  /** Tensors the tail reads that it does not compute and that are not constants: its inputs. */
  inputs: string[];
  output: string;
}

/**
 * The tail of the network from `start` to the logits. Tensors the tail needs that flow in from
 * before `start` (a residual operand, say) become extra inputs: they are computed from the same
 * image and are constants for anything trained in the tail. With `from` (a node), every node
 * from it on in graph order is part of the tail too, whatever it reads: a residual unit's
 * downsample conv on the skip path, which exporters write after the unit's second conv, is then
 * computed (and trainable) from its input.
 */
export function tailFrom(graph: GraphProto, start: string, from?: NodeProto): Subgraph {
  const view = new GraphView(graph);
  const output = graph.output![0].name!;
  // Tensors the tail computes: those from `start` (and from `from` on); anything else it reads
  // is a constant (initializer) or an input computed before from the same image.
  const downstream = new Set<string>([start]);
  const first = from ? view.nodes.indexOf(from) : Infinity;
  view.nodes.forEach((node, k) => {
    const computed = (node.input ?? []).some((i) => downstream.has(i));
    if (computed || (k >= first && node.opType !== 'Constant'))
      for (const o of node.output ?? []) downstream.add(o);
  });
  if (!downstream.has(output))
    throw new RuleditError('no-tensor', `the logits do not depend on '${start}'`);
  const needed = new Set<NodeProto>();
  const inputs = new Set<string>([start]);
  const visit = (tensor: string) => {
    if (!tensor || tensor === start) return;
    if (!downstream.has(tensor)) {
      if (!view.constant(tensor)) inputs.add(tensor);
      return;
    }
    const node = view.producer(tensor)!;
    if (needed.has(node)) return;
    needed.add(node);
    for (const i of node.input ?? []) visit(i);
  };
  visit(output);
  // The graph's own node order is topological (ONNX requires it).
  const nodes = view.nodes.filter((n) => needed.has(n));
  return { nodes, inputs: [...inputs], output };
}
