import { valueInfo } from './build.js';
import { GraphView } from './graph.js';
import type { ModelProto, NodeProto } from './proto.js';
import { tailFrom } from './subgraph.js';
import { dimsOf } from './tensor.js';

/**
 * The network from `start` to the logits as a model of its own, with the initializers named in
 * `free` turned into inputs. Inputs captured once from the full model can then be run through
 * the tail with many candidate weights: the safety guard tries several strengths of an edit this
 * way without recomputing the part of the network before the edited block.
 */
export function tailModel(
  proto: ModelProto,
  start: string,
  free: string[],
  /** Every node from this one on belongs to the tail too (see tailFrom). */
  from?: NodeProto,
): { proto: ModelProto; inputs: string[] } {
  const graph = proto.graph!;
  const view = new GraphView(graph);
  const tail = tailFrom(graph, start, from);
  const nodes = new Set<NodeProto>(tail.nodes);
  // Weights behind Constant or Identity nodes come with the nodes that hold them.
  const holders = (tensor: string) => {
    const node = view.producer(tensor);
    if (!node || nodes.has(node)) return;
    nodes.add(node);
    for (const i of node.input ?? []) holders(i);
  };
  for (const node of tail.nodes)
    for (const i of node.input ?? []) if (i && !tail.inputs.includes(i)) holders(i);
  const kept = view.nodes.filter((n) => nodes.has(n));
  const read = new Set(kept.flatMap((n) => n.input ?? []));
  const initializers = (graph.initializer ?? []).filter((t) => read.has(t.name ?? ''));
  const freeSet = new Set(free);
  return {
    inputs: tail.inputs,
    proto: {
      ...proto,
      graph: {
        ...graph,
        node: kept,
        initializer: initializers.filter((t) => !freeSet.has(t.name ?? '')),
        input: [
          ...tail.inputs.map((name) => valueInfo(name)),
          ...initializers
            .filter((t) => freeSet.has(t.name ?? ''))
            .map((t) => valueInfo(t.name!, dimsOf(t))),
        ],
        output: [graph.output![0]],
        valueInfo: [],
      },
    },
  };
}
