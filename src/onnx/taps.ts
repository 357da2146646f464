import { RuleditError } from '../errors.js';
import type { ModelProto } from './proto.js';
import { DataType } from './proto.js';

/**
 * A copy of the model that also outputs the named intermediate tensors (nethook-style taps
 * without re-implementing the network). The original proto is not modified.
 */
export function withTaps(proto: ModelProto, tensors: string[]): ModelProto {
  const graph = proto.graph!;
  const known = new Set<string>([
    ...(graph.input ?? []).map((v) => v.name ?? ''),
    ...(graph.node ?? []).flatMap((n) => n.output ?? []),
  ]);
  const existing = new Set((graph.output ?? []).map((o) => o.name));
  const extra = [...new Set(tensors)].filter((t) => !existing.has(t));
  for (const t of extra) {
    if (!known.has(t)) {
      throw new RuleditError('no-tensor', `the model has no tensor named '${t}' to tap`);
    }
  }
  const outputs = extra.map((name) => ({
    name,
    type: { tensorType: { elemType: DataType.FLOAT } },
  }));
  return { ...proto, graph: { ...graph, output: [...(graph.output ?? []), ...outputs] } };
}
