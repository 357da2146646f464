import type * as TF from '@tensorflow/tfjs-core';
import { RuleditError } from '../errors.js';
import {
  clipBounds,
  floatAttr,
  GraphView,
  hardSigmoidParams,
  intAttr,
  intsAttr,
  textAttr,
} from '../onnx/graph.js';
import type { OnnxModel } from '../onnx/model.js';
import { DataType, type NodeProto } from '../onnx/proto.js';
import { dimsOf, tensorToFloat32 } from '../onnx/tensor.js';
import { tailFrom } from '../onnx/subgraph.js';

type Tf = typeof TF;

/** A value in flight. 4-D activations run channels-last (TF.js's native layout); `nhwc` says so. */
interface Value {
  t: TF.Tensor;
  nhwc: boolean;
}

/** The network from one tensor to the logits as a differentiable TF.js function (get `tf` from gradEngine()). */
export interface Tail {
  /** Tensors to feed (NCHW float, as ONNX Runtime gives them): the start first. */
  inputs: string[];
  /** Every float constant the tail reads, in ONNX layout, by initializer name. */
  params: Map<string, TF.Tensor>;
  /** The params that are tf.Variables (trainable). */
  trainable: Map<string, TF.Variable>;
  /** Logits [N, classes] for the feeds. Call inside tf.tidy / a gradient function. */
  apply(feeds: Record<string, TF.Tensor>): TF.Tensor;
  dispose(): void;
}

/**
 * Import the tail of an ONNX classifier from `start` to its logits (and every node from `from`
 * on, see tailFrom). Initializers named in `train` become tf.Variables; every other constant is a
 * plain tensor. An op outside the supported set is a clear error naming it.
 */
export function importTail(
  tf: Tf,
  model: OnnxModel,
  start: string,
  train: string[] | 'all' = [],
  from?: NodeProto,
): Tail {
  const graph = model.proto.graph!;
  const view = new GraphView(graph);
  const sub = tailFrom(graph, start, from);
  const opset = model.proto.opsetImport?.find((o) => !o.domain)?.version;
  const ops = sub.nodes.map((node) => resolveOp(node, Number(opset ?? OPSET_UNKNOWN)));
  if (train === 'all') train = parametersOf(view, sub.nodes, ops);
  const params = new Map<string, TF.Tensor>();
  const trainable = new Map<string, TF.Variable>();
  const trainSet = new Set(train);
  // Float constants become tensors once; names resolve through Identity to their initializer.
  const constant = (name: string): TF.Tensor | undefined => {
    const source = view.source(name);
    if (params.has(source)) return params.get(source);
    const t = view.constant(name);
    if (!t || (t.dataType ?? 1) !== DataType.FLOAT) return undefined;
    const tensor = tf.tensor(tensorToFloat32(t), dimsOf(t));
    if (trainSet.has(source)) {
      // Unnamed: TF.js names must be unique process-wide, and tails come and go.
      const v = tf.variable(tensor, true);
      tensor.dispose();
      trainable.set(source, v);
      params.set(source, v);
      return v;
    }
    params.set(source, tensor);
    return tensor;
  };
  for (const node of sub.nodes) for (const i of node.input ?? []) if (i) constant(i);
  for (const name of trainSet) {
    if (!trainable.has(name))
      throw new RuleditError(
        'no-tensor',
        `'${name}' is not a float weight of the tail from '${start}'`,
      );
  }

  const apply = (feeds: Record<string, TF.Tensor>): TF.Tensor => {
    const values = new Map<string, Value>();
    for (const name of sub.inputs) {
      const t = feeds[name];
      if (!t) throw new Error(`tail input '${name}' was not fed`);
      values.set(
        name,
        t.rank === 4 ? { t: tf.transpose(t, [0, 2, 3, 1]), nhwc: true } : { t, nhwc: false },
      );
    }
    const get = (name: string): Value => {
      const v = values.get(name);
      if (v) return v;
      const c = constant(name);
      if (!c) throw new Error(`internal: no value for '${name}'`);
      return { t: c, nhwc: false };
    };
    sub.nodes.forEach((node, k) => {
      const ins = node.input ?? [];
      values.set(node.output![0], ops[k].build({ tf, node, view, ins, x: get(ins[0]), get }));
    });
    return nchw(tf, get(sub.output));
  };

  return {
    inputs: sub.inputs,
    params,
    trainable,
    apply,
    dispose: () => params.forEach((t) => t.dispose()),
  };
}

/**
 * The learnable parameters among a tail's constants: weights, biases and BatchNormalization
 * parameters of the layers (each op's table entry says which inputs), read by that node alone
 * (not Clip bounds, shapes or shared values).
 */
function parametersOf(view: GraphView, nodes: NodeProto[], ops: Op[]): string[] {
  const names = new Set<string>();
  nodes.forEach((node, k) => {
    for (const name of ops[k].params?.(node.input ?? []) ?? []) {
      const t = name && view.constant(name);
      if (t && (t.dataType ?? 1) === DataType.FLOAT && view.consumers(name).length === 1)
        names.add(view.source(name));
    }
  });
  return [...names];
}

/** The ONNX (channels-first) view of a value. */
function nchw(tf: Tf, v: Value): TF.Tensor {
  return v.nhwc ? tf.transpose(v.t, [0, 3, 1, 2]) : v.t;
}

/** Bring a channels-first operand (a constant like [C,1,1]) to broadcast against a NHWC value. */
function alignTo(tf: Tf, other: Value): TF.Tensor {
  if (other.nhwc) return other.t;
  let t = other.t;
  if (t.rank > 4 || t.rank === 0) return t;
  while (t.rank < 4) t = tf.expandDims(t, 0);
  return tf.transpose(t, [0, 2, 3, 1]);
}

/** What an op's builder is given: the node, its inputs' names, its first input's value. */
interface OpContext {
  tf: Tf;
  node: NodeProto;
  view: GraphView;
  ins: string[];
  x: Value;
  get: (name: string) => Value;
}

/**
 * One entry per ONNX op the gradient engine runs, as onnxruntime-web resolves its kernels: the
 * builder of its TF.js value, the opsets whose semantics it follows (`since`, default 1), and
 * which of its inputs are learnable parameters (global fine-tuning trains them).
 */
interface Op {
  build(c: OpContext): Value;
  since?: number;
  params?: (ins: string[]) => string[];
}

/** Same layout as its input: an elementwise op. */
const elementwise =
  (f: (tf: Tf, t: TF.Tensor, node: NodeProto) => TF.Tensor): Op['build'] =>
  ({ tf, x, node }) => ({ t: f(tf, x.t, node), nhwc: x.nhwc });

const binary =
  (name: 'add' | 'sub' | 'mul' | 'div'): Op['build'] =>
  ({ tf, x, get, ins }) => {
    const y = get(ins[1]);
    const f = tf[name];
    if (x.nhwc || y.nhwc) return { t: f(alignTo(tf, x), alignTo(tf, y)), nhwc: true };
    return { t: f(x.t, y.t), nhwc: false };
  };

const OPS: Record<string, Op> = {
  Identity: { build: ({ x }) => x },
  Dropout: { build: ({ x }) => x },
  Relu: { build: elementwise((tf, t) => tf.relu(t)) },
  LeakyRelu: {
    build: elementwise((tf, t, node) => tf.leakyRelu(t, floatAttr(node, 'alpha', 0.01))),
  },
  Sigmoid: { build: elementwise((tf, t) => tf.sigmoid(t)) },
  Tanh: { build: elementwise((tf, t) => tf.tanh(t)) },
  Erf: { build: elementwise((tf, t) => tf.erf(t)) },
  HardSigmoid: { build: elementwise((tf, t, node) => hardSigmoid(tf, t, hardSigmoidParams(node))) },
  HardSwish: {
    build: elementwise((tf, t) => tf.mul(t, hardSigmoid(tf, t, { alpha: 1 / 6, beta: 0.5 }))),
  },
  Gelu: {
    build: elementwise((tf, t, node) => {
      const inner =
        textAttr(node, 'approximate') === 'tanh'
          ? tf.tanh(tf.mul(tf.add(t, tf.mul(tf.pow(t, 3), 0.044715)), Math.sqrt(2 / Math.PI)))
          : tf.erf(tf.mul(t, Math.SQRT1_2));
      return tf.mul(tf.mul(t, 0.5), tf.add(inner, 1));
    }),
  },
  Clip: {
    build: ({ tf, x, node, view }) => {
      const bounds = clipBounds(view, node);
      if (!bounds)
        throw new RuleditError(
          'unsupported-op',
          `Clip with computed bounds (node '${node.name}'): the gradient engine needs constant ones`,
        );
      const [lo, hi] = [Math.max(bounds.min, -3.4e38), Math.min(bounds.max, 3.4e38)];
      return { t: tf.clipByValue(x.t, lo, hi), nhwc: x.nhwc };
    },
  },
  Add: { build: binary('add'), params: (ins) => ins },
  Sub: { build: binary('sub') },
  Mul: { build: binary('mul') },
  Div: { build: binary('div') },
  BatchNormalization: {
    // The running mean and variance are buffers, not parameters (the published baseline trains
    // scale and bias only; a gradient step could make a variance negative).
    params: (ins) => ins.slice(1, 3),
    build: ({ tf, x, node, ins, get }) => {
      const [scale, bias, mean, variance] = ins.slice(1).map((n) => get(n).t);
      const eps = floatAttr(node, 'epsilon', 1e-5);
      // Channels are last in NHWC and in [N, C]: the vectors broadcast as they are.
      if (!x.nhwc && x.t.rank !== 2)
        throw new RuleditError(
          'unsupported-op',
          `BatchNormalization on a rank-${x.t.rank} tensor (node '${node.name}')`,
        );
      const t = tf.add(
        tf.mul(tf.div(tf.sub(x.t, mean), tf.sqrt(tf.add(variance, eps))), scale),
        bias,
      );
      return { t, nhwc: x.nhwc };
    },
  },
  Conv: {
    params: (ins) => ins.slice(1),
    build: ({ tf, node, x, ins, get }) => ({
      t: conv(tf, node, x, get(ins[1]).t, ins[2] ? get(ins[2]).t : undefined),
      nhwc: true,
    }),
  },
  MaxPool: { build: ({ tf, node, x }) => ({ t: pool(tf, node, x), nhwc: true }) },
  AveragePool: { build: ({ tf, node, x }) => ({ t: pool(tf, node, x), nhwc: true }) },
  GlobalAveragePool: { build: ({ tf, x }) => ({ t: tf.mean(x.t, [1, 2], true), nhwc: true }) },
  Flatten: {
    build: ({ tf, node, x }) => {
      const t = nchw(tf, x);
      const axis = intAttr(node, 'axis', 1);
      const lead = t.shape.slice(0, axis).reduce((a, b) => a * b, 1);
      return { t: tf.reshape(t, [lead, -1]), nhwc: false };
    },
  },
  // Reshape-1 took its shape as an attribute; from opset 5 it is an input.
  Reshape: {
    since: 5,
    build: ({ tf, node, x, ins, view }) => {
      const t = nchw(tf, x);
      const shape = view.constantNumbers(ins[1]);
      if (!shape)
        throw new RuleditError(
          'unsupported-op',
          `Reshape with a computed shape (node '${node.name}')`,
        );
      return {
        t: tf.reshape(
          t,
          shape.map((d, i) => (d === 0 ? t.shape[i] : d)),
        ),
        nhwc: false,
      };
    },
  },
  Transpose: {
    build: ({ tf, node, x }) => ({
      t: tf.transpose(nchw(tf, x), intsAttr(node, 'perm')),
      nhwc: false,
    }),
  },
  Concat: {
    build: ({ tf, node, ins, get }) => {
      const parts = ins.map(get);
      const axis = intAttr(node, 'axis', 1);
      const rank = nchw(tf, parts[0]).rank;
      if (parts.every((p) => p.nhwc) && (axis === 1 || axis === 1 - rank))
        return {
          t: tf.concat(
            parts.map((p) => p.t),
            3,
          ),
          nhwc: true,
        };
      return {
        t: tf.concat(
          parts.map((p) => nchw(tf, p)),
          axis,
        ),
        nhwc: false,
      };
    },
  },
  Gemm: {
    params: (ins) => ins.slice(1),
    build: ({ tf, node, x, ins, get }) => {
      let a = nchw(tf, x);
      let b = get(ins[1]).t;
      if (intAttr(node, 'transA', 0)) a = tf.transpose(a);
      // Materialize the transpose: matMul with transposeB runs ~15x slower on wasm.
      if (intAttr(node, 'transB', 0)) b = tf.transpose(b);
      let y = tf.mul(tf.matMul(a, b), floatAttr(node, 'alpha', 1));
      if (ins[2]) y = tf.add(y, tf.mul(get(ins[2]).t, floatAttr(node, 'beta', 1)));
      return { t: y, nhwc: false };
    },
  },
  MatMul: {
    params: (ins) => ins.slice(1),
    build: ({ tf, x, ins, get }) => ({
      t: tf.matMul(nchw(tf, x), nchw(tf, get(ins[1]))),
      nhwc: false,
    }),
  },
};

/** A model that does not say its opset is taken to be recent. */
const OPSET_UNKNOWN = Infinity;

/** The table's entry for a node, or a clear error naming the op (or its opset) and what is supported. */
function resolveOp(node: NodeProto, opset: number): Op {
  const op = OPS[node.opType ?? ''];
  if (!op)
    throw new RuleditError(
      'unsupported-op',
      `cannot differentiate through op '${node.opType}' (node '${node.name}'): ruledit's gradient engine supports ${Object.keys(OPS).join(', ')}`,
    );
  if (opset < (op.since ?? 1))
    throw new RuleditError(
      'unsupported-op',
      `cannot differentiate through op '${node.opType}' of opset ${opset} (node '${node.name}'): ruledit's gradient engine follows its semantics from opset ${op.since} on`,
    );
  return op;
}

/** clip(alpha x + beta, 0, 1), ONNX's HardSigmoid. */
function hardSigmoid(
  tf: Tf,
  x: TF.Tensor,
  { alpha, beta }: { alpha: number; beta: number },
): TF.Tensor {
  return tf.clipByValue(tf.add(tf.mul(x, alpha), beta), 0, 1);
}

type Pad =
  | 'valid'
  | 'same'
  | number
  | [[number, number], [number, number], [number, number], [number, number]];

/** ONNX pads/auto_pad as a TF.js padding argument (explicit per-side pads for NHWC). */
function padding(node: NodeProto): Pad {
  const autoPad = textAttr(node, 'auto_pad') ?? '';
  if (autoPad === 'SAME_UPPER') return 'same';
  if (autoPad === 'VALID') return 'valid';
  if (autoPad === 'SAME_LOWER')
    throw new RuleditError('unsupported-op', `auto_pad SAME_LOWER (node '${node.name}')`);
  const [pt = 0, pl = 0, pb = 0, pr = 0] = intsAttr(node, 'pads') ?? [];
  if (pt + pl + pb + pr === 0) return 'valid';
  return [
    [0, 0],
    [pt, pb],
    [pl, pr],
    [0, 0],
  ];
}

function conv(tf: Tf, node: NodeProto, x: Value, w: TF.Tensor, bias?: TF.Tensor): TF.Tensor {
  const input = x.nhwc ? x.t : tf.transpose(x.t, [0, 2, 3, 1]);
  const group = intAttr(node, 'group', 1);
  const strides = (intsAttr(node, 'strides') ?? [1, 1]) as [number, number];
  const dilations = (intsAttr(node, 'dilations') ?? [1, 1]) as [number, number];
  const pad = padding(node);
  const [out, perGroup] = w.shape;
  const channels = input.shape[3]!;
  let y: TF.Tensor;
  if (group === 1) {
    y = tf.conv2d(
      input as TF.Tensor4D,
      tf.transpose(w, [2, 3, 1, 0]) as TF.Tensor4D,
      strides,
      pad,
      'NHWC',
      dilations,
    );
  } else if (group === channels && perGroup === 1 && out === channels) {
    y = tf.depthwiseConv2d(
      input as TF.Tensor4D,
      tf.transpose(w, [2, 3, 0, 1]) as TF.Tensor4D,
      strides,
      pad,
      'NHWC',
      dilations,
    );
  } else {
    const xs = tf.split(input, group, 3);
    const ws = tf.split(w, group, 0);
    y = tf.concat(
      xs.map((xi, g) =>
        tf.conv2d(
          xi as TF.Tensor4D,
          tf.transpose(ws[g], [2, 3, 1, 0]) as TF.Tensor4D,
          strides,
          pad,
          'NHWC',
          dilations,
        ),
      ),
      3,
    );
  }
  return bias ? tf.add(y, bias) : y;
}

function pool(tf: Tf, node: NodeProto, x: Value): TF.Tensor {
  const input = (x.nhwc ? x.t : tf.transpose(x.t, [0, 2, 3, 1])) as TF.Tensor4D;
  const kernel = intsAttr(node, 'kernel_shape') as [number, number];
  const strides = (intsAttr(node, 'strides') ?? [1, 1]) as [number, number];
  const pad = padding(node);
  const max = node.opType === 'MaxPool';
  if (Array.isArray(pad)) {
    // TF.js pools take 'same'/'valid' or one number; pad by hand, with -inf so max ignores it.
    if (!max && intAttr(node, 'count_include_pad', 0) === 0) {
      throw new RuleditError(
        'unsupported-op',
        `AveragePool with explicit pads that exclude the padding (node '${node.name}')`,
      );
    }
    const padded = tf.pad(input, pad, max ? -3.4e38 : 0);
    return max
      ? tf.maxPool(padded, kernel, strides, 'valid')
      : tf.avgPool(padded, kernel, strides, 'valid');
  }
  return max ? tf.maxPool(input, kernel, strides, pad) : tf.avgPool(input, kernel, strides, pad);
}
