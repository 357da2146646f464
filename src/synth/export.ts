import { GraphBuilder } from '../onnx/build.js';
import type { OnnxModel } from '../onnx/model.js';
import { BN_EPSILON, type NetParams } from './net.js';

/** [3, 3, cin, cout] (TF.js) -> [cout, cin, 3, 3] (ONNX). */
function toOIHW(w: Float32Array, cin: number, cout: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let ky = 0; ky < 3; ky++)
    for (let kx = 0; kx < 3; kx++)
      for (let i = 0; i < cin; i++)
        for (let o = 0; o < cout; o++)
          out[((o * cin + i) * 3 + ky) * 3 + kx] = w[((ky * 3 + kx) * cin + i) * cout + o];
  return out;
}

/**
 * The scene classifier as ONNX: NCHW float input 'image', Conv (no bias) -> explicit
 * BatchNormalization -> Relu, residual Add before the Relu, GlobalAveragePool, Flatten, Gemm.
 * BatchNorm stays a node of its own (not folded) so the editor meets it as real models have it.
 */
export function sceneModelToOnnx(p: NetParams): OnnxModel {
  const g = new GraphBuilder(13);
  g.input('image', ['N', 3, p.size, p.size]);
  const convBn = (x: string, i: number): string => {
    const c = p.convs[i];
    const w = g.init(`${c.name}.weight`, [c.cout, c.cin, 3, 3], toOIHW(c.w, c.cin, c.cout));
    const y = g.node(
      'Conv',
      [x, w],
      { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [c.stride, c.stride] },
      c.name,
    );
    return g.node(
      'BatchNormalization',
      [
        y,
        g.init(`${c.name}.bn.scale`, [c.cout], c.gamma),
        g.init(`${c.name}.bn.bias`, [c.cout], c.beta),
        g.init(`${c.name}.bn.mean`, [c.cout], c.mean),
        g.init(`${c.name}.bn.var`, [c.cout], c.variance),
      ],
      { epsilon: { float: BN_EPSILON } },
      `${c.name}.bn`,
    );
  };
  const relu = (x: string, name: string) => g.node('Relu', [x], {}, name);
  let h = relu(convBn('image', 0), 'stem.relu');
  h = relu(convBn(h, 1), 'conv1.relu');
  for (const [first, name] of [
    [2, 'res1'],
    [5, 'res2'],
  ] as const) {
    if (first === 5) h = relu(convBn(h, 4), 'down.relu');
    const branch = convBn(relu(convBn(h, first), `${name}a.relu`), first + 1);
    h = relu(g.node('Add', [h, branch], {}, `${name}.add`), `${name}.relu`);
  }
  const pooled = g.node('Flatten', [g.node('GlobalAveragePool', [h], {}, 'pool')], {}, 'flatten');
  const features = p.fc.w.length / p.classes;
  g.node(
    'Gemm',
    [
      pooled,
      g.init('fc.weight', [features, p.classes], p.fc.w),
      g.init('fc.bias', [p.classes], p.fc.b),
    ],
    {},
    'logits',
  );
  g.output('logits', ['N', p.classes]);
  return g.build();
}
