import type { ModelProto } from './proto.js';
import { int64Tensor } from './tensor.js';

/** Name of the output that `withGram` adds. */
export const GRAM_OUTPUT = 'ruledit.gram';

/**
 * A copy of the model that also outputs the Gram matrix of a tensor's channel vectors,
 * G = sum over batch and positions (or tokens) of k k^T (C x C); a conv's keys are channels-first,
 * a dense layer's channels-last. ONNX Runtime's matrix product does the
 * heavy part at BLAS speed, and only C x C floats leave the session instead of every key.
 */
export function withGram(
  proto: ModelProto,
  tensor: string,
  layout: 'channels-first' | 'channels-last',
  channels: number,
): ModelProto {
  const spatial = layout === 'channels-first';
  const graph = proto.graph!;
  const n = (s: string) => `ruledit.gram.${s}`;
  const nodes = spatial
    ? [
        // [N, C, H, W] -> [C, N, H, W] -> [C, N*H*W]
        {
          opType: 'Transpose',
          input: [tensor],
          output: [n('cnhw')],
          attribute: [{ name: 'perm', type: 7, ints: [1, 0, 2, 3] }],
        },
        { opType: 'Reshape', input: [n('cnhw'), n('shape')], output: [n('rows')] },
      ]
    : [
        // [N, C] or tokens [N, T, C] -> [N*T, C] -> [C, N*T]
        { opType: 'Reshape', input: [tensor, n('shape')], output: [n('flat')] },
        {
          opType: 'Transpose',
          input: [n('flat')],
          output: [n('rows')],
          attribute: [{ name: 'perm', type: 7, ints: [1, 0] }],
        },
      ];
  nodes.push(
    {
      opType: 'Transpose',
      input: [n('rows')],
      output: [n('cols')],
      attribute: [{ name: 'perm', type: 7, ints: [1, 0] }],
    },
    { opType: 'MatMul', input: [n('rows'), n('cols')], output: [GRAM_OUTPUT] },
  );
  return {
    ...proto,
    graph: {
      ...graph,
      node: [...(graph.node ?? []), ...nodes.map((node, i) => ({ ...node, name: n(`node${i}`) }))],
      initializer: [
        ...(graph.initializer ?? []),
        int64Tensor(n('shape'), spatial ? [0, -1] : [-1, channels]),
      ],
      output: [
        ...(graph.output ?? []),
        { name: GRAM_OUTPUT, type: { tensorType: { elemType: 1 } } },
      ],
    },
  };
}
