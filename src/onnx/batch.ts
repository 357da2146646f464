import type { ModelProto, ValueInfoProto } from './proto.js';
import { toNumber } from './proto.js';

/**
 * A session-only copy of a graph whose image input has a static batch size (every default
 * `torch.onnx.export` fixes it at 1), with that dimension made dynamic on the input, the outputs
 * and the recorded intermediate shapes, so ruledit can run it in batches; the user's file is never
 * changed. The graph itself (Flatten, GlobalAveragePool, Gemm) is batch-agnostic in the exports
 * this targets; one that hard-codes its batch in a Reshape fails at run time, with ORT's message.
 * Undefined when the batch is already dynamic.
 */
export function withDynamicBatch(proto: ModelProto, input: string): ModelProto | undefined {
  const graph = proto.graph!;
  const declared = (graph.input ?? []).find((v) => v.name === input);
  const first = declared?.type?.tensorType?.shape?.dim?.[0];
  if (first?.dimValue == null || first.dimParam) return undefined;
  const batch = toNumber(first.dimValue);
  const dynamic = (v: ValueInfoProto): ValueInfoProto => {
    const dims = v.type?.tensorType?.shape?.dim;
    if (!dims?.length || dims[0].dimValue == null || toNumber(dims[0].dimValue) !== batch) return v;
    const shape = { dim: [{ dimParam: 'N' }, ...dims.slice(1)] };
    return { ...v, type: { ...v.type, tensorType: { ...v.type!.tensorType, shape } } };
  };
  return {
    ...proto,
    graph: {
      ...graph,
      input: (graph.input ?? []).map((v) => (v.name === input ? dynamic(v) : v)),
      output: (graph.output ?? []).map(dynamic),
      valueInfo: (graph.valueInfo ?? []).map(dynamic),
    },
  };
}
