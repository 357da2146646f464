import { RuleditError } from '../errors.js';
import {
  clipBounds,
  floatAttr,
  GraphView,
  hardSigmoidParams,
  intAttr,
  intsAttr,
  textAttr,
} from './graph.js';
import type { GraphProto, NodeProto } from './proto.js';
import { dimsOf } from './tensor.js';

/**
 * The nonlinearity that ends a block, as exporters write it (docs/method.md section 4). Hardswish
 * and SiLU come from PyTorch as `x * HardSigmoid(x)` and `x * Sigmoid(x)` at opset < 14.
 */
export type Activation =
  | { kind: 'none' | 'relu' | 'relu6' | 'sigmoid' | 'silu' | 'tanh' | 'gelu' | 'gelu-tanh' }
  | { kind: 'leaky-relu'; alpha: number }
  /** clip(alpha * x + beta, 0, 1), and x times it. */
  | { kind: 'hard-sigmoid' | 'hardswish'; alpha: number; beta: number };

/**
 * An editable layer (docs/method.md section 4): value = [MaxPool] act(affine(Linear_W(key)) + skip).
 * Plain data naming tensors of the graph, so it serializes as-is (`inspect --json`).
 */
export interface Block {
  /** Position among all linear layers in graph order (editable or not): stable for a model. */
  index: number;
  /** The linear node's name (or its output tensor when the node is unnamed). */
  name: string;
  op: 'Conv' | 'Gemm' | 'MatMul';
  /** The operators the block spans, e.g. ['Conv', 'BatchNormalization', 'Add', 'Relu']. */
  chain: string[];
  editable: boolean;
  /** Why the block cannot be edited (depthwise conv, transposed input, ...). */
  reason?: string;
  /** Canonical weight shape [out, in, kh, kw] (conv) or [out, in] (dense), whatever the storage. */
  weightShape: number[];
  /** Tensor names in the graph. */
  weight: string;
  bias?: string;
  key: string;
  linearOutput: string;
  /** Before the activation (after BatchNormalization and the residual Add). */
  preActivation: string;
  value: string;
  /** The residual operand of the Add, computed from the same image. */
  skip?: string;
  batchNorm?: { scale: string; bias: string; mean: string; variance: string; epsilon: number };
  activation: Activation;
  conv?: Window2d & { group: number };
  /**
   * A MaxPool right after the activation (a VGG stage's end): the published block includes it,
   * so `value` is the pooled map and `pool.input` the activation's output. Only after an
   * activation that never decreases, so max(act(s)) = act(max(s)).
   */
  pool?: Window2d & { input: string; ceil: boolean };
  /** How a dense weight is stored: 'out-in' (Gemm transB=1) or 'in-out' (MatMul, Gemm transB=0). */
  storage?: 'out-in' | 'in-out';
}

/** Where a 2-D conv or pool window sits: ONNX's attributes, with their defaults filled in. */
export interface Window2d {
  kernel: number[];
  strides: number[];
  pads: number[];
  dilations: number[];
  autoPad: string;
}

const LINEAR = new Set(['Conv', 'Gemm', 'MatMul']);
/** Activations with max(act(a), act(b)) = act(max(a, b)): a MaxPool after them joins the block. */
const NON_DECREASING = new Set([
  'none',
  'relu',
  'relu6',
  'leaky-relu',
  'hard-sigmoid',
  'sigmoid',
  'tanh',
]);

/** Every linear layer of the graph in node order, each with its block structure. */
export function listBlocks(graph: GraphProto): Block[] {
  const view = new GraphView(graph);
  const blocks: Block[] = [];
  const gated = gatingBranches(view);
  for (const node of view.nodes) {
    if (!LINEAR.has(node.opType ?? '')) continue;
    const block = describe(view, node, blocks.length, gated);
    if (block) blocks.push(block);
  }
  return blocks;
}

function describe(
  view: GraphView,
  node: NodeProto,
  index: number,
  gated: Map<NodeProto, string>,
): Block | undefined {
  const op = node.opType as Block['op'];
  const inputs = node.input ?? [];
  const weightTensor = view.constant(inputs[1] ?? '');
  // A product of two activations (attention, say) has no weight to edit: not a layer at all.
  if (!weightTensor) return undefined;
  const stored = dimsOf(weightTensor);
  const name = node.name || node.output![0];
  let editable = true;
  let reason: string | undefined;
  const refuse = (why: string) => {
    if (editable) [editable, reason] = [false, why];
  };

  let weightShape = stored;
  let storage: Block['storage'];
  let conv: Block['conv'];
  let bias = inputs[2] || undefined;
  if (op === 'Conv') {
    const group = intAttr(node, 'group', 1);
    const kernel = stored.slice(2);
    const rank = kernel.length;
    conv = { ...window2d(node, kernel), group };
    if (rank !== 2) refuse(`${rank}-D convolution (only 2-D convolutions are editable)`);
    if (group !== 1) {
      refuse(
        group === stored[0] && stored[1] === 1
          ? `depthwise convolution (group = ${group}): each channel has its own filter, so there is no shared key space to rewrite`
          : `grouped convolution (group = ${group}): keys are split across groups`,
      );
    }
  } else {
    if (stored.length !== 2) refuse(`weight has ${stored.length} dimensions; expected 2`);
    const transB = op === 'Gemm' && intAttr(node, 'transB', 0) === 1;
    storage = transB ? 'out-in' : 'in-out';
    weightShape = transB ? stored : [stored[1], stored[0]];
    if (op === 'Gemm') {
      if (intAttr(node, 'transA', 0) === 1) refuse('Gemm with transA = 1 (keys are transposed)');
      if (floatAttr(node, 'alpha', 1) !== 1 || floatAttr(node, 'beta', 1) !== 1) {
        refuse('Gemm with alpha or beta other than 1');
      }
    }
  }

  const chain: string[] = [op];
  const linearOutput = node.output![0];
  let out = linearOutput;
  let step = view.next(out);

  // A MatMul's bias is a following Add of a constant vector.
  if (op === 'MatMul' && step?.node.opType === 'Add') {
    const other = otherInput(step.node, step.input);
    if (other && view.constant(other)) {
      bias = other;
      chain.push('Add(bias)');
      out = step.node.output![0];
      step = view.next(out);
    }
  }

  let batchNorm: Block['batchNorm'];
  if (step?.node.opType === 'BatchNormalization' && step.node.input![0] === step.input) {
    const [, scale, b, mean, variance] = step.node.input!;
    batchNorm = { scale, bias: b, mean, variance, epsilon: floatAttr(step.node, 'epsilon', 1e-5) };
    chain.push('BatchNormalization');
    out = step.node.output![0];
    step = view.next(out);
  }

  let skip: string | undefined;
  if (step?.node.opType === 'Add') {
    const other = otherInput(step.node, step.input);
    if (other && !view.constant(other)) {
      skip = other;
      chain.push('Add');
      out = step.node.output![0];
      step = view.next(out);
    }
  }

  const preActivation = out;
  const act = activationAt(view, out);
  const activation = act?.activation ?? { kind: 'none' };
  if (act) {
    chain.push(act.label);
    out = act.output;
  }
  let pool: Block['pool'];
  const after = view.next(out);
  if (
    after?.node.opType === 'MaxPool' &&
    NON_DECREASING.has(activation.kind) &&
    !(after.node.output ?? []).slice(1).some((o) => o && view.consumers(o).length)
  ) {
    const kernel = intsAttr(after.node, 'kernel_shape') ?? [];
    if (kernel.length === 2) {
      pool = {
        ...window2d(after.node, kernel),
        input: out,
        ceil: intAttr(after.node, 'ceil_mode', 0) === 1,
      };
      chain.push('MaxPool');
      out = after.node.output![0];
    }
  }
  if (editable && gated.has(node)) {
    refuse(
      `squeeze-and-excitation branch: its keys are pooled over the whole image (1x1), so no mask can select a concept in them; it only rescales the channels of '${gated.get(node)}'`,
    );
  }

  return {
    index,
    name,
    op,
    chain,
    editable,
    ...(reason ? { reason } : {}),
    weightShape,
    weight: inputs[1],
    ...(bias ? { bias } : {}),
    key: inputs[0],
    linearOutput,
    preActivation,
    value: out,
    ...(skip ? { skip } : {}),
    ...(batchNorm ? { batchNorm } : {}),
    activation,
    ...(conv ? { conv } : {}),
    ...(pool ? { pool } : {}),
    ...(storage ? { storage } : {}),
  };
}

/** The block ending at its activation, before its MaxPool (the rewrite's `pool: false`). */
export function withoutPool(block: Block): Block {
  if (!block.pool) return block;
  const { pool, ...rest } = block;
  return { ...rest, value: pool.input, chain: block.chain.slice(0, -1) };
}

function otherInput(node: NodeProto, input: string): string | undefined {
  const ins = node.input ?? [];
  if (ins.length !== 2) return undefined;
  return ins[0] === input ? ins[1] : ins[0];
}

function window2d(node: NodeProto, kernel: number[]): Window2d {
  return {
    kernel,
    strides: intsAttr(node, 'strides') ?? kernel.map(() => 1),
    pads: intsAttr(node, 'pads') ?? new Array(kernel.length * 2).fill(0),
    dilations: intsAttr(node, 'dilations') ?? kernel.map(() => 1),
    autoPad: textAttr(node, 'auto_pad') ?? 'NOTSET',
  };
}

const GLOBAL_POOLS = new Set(['GlobalAveragePool', 'GlobalMaxPool', 'ReduceMean', 'ReduceMax']);
/** How far a gating branch may run from its pool to the Mul that applies it. */
const MAX_GATE_NODES = 32;

/**
 * The nodes of every squeeze-and-excitation branch: a global pool of X whose result, through a
 * short chain, multiplies X again. Mapped to the tensor X whose channels they gate.
 */
function gatingBranches(view: GraphView): Map<NodeProto, string> {
  const gated = new Map<NodeProto, string>();
  for (const pool of view.nodes) {
    if (!GLOBAL_POOLS.has(pool.opType ?? '')) continue;
    const x = pool.input![0];
    const gates = new Set(view.consumers(x).filter((n) => n.opType === 'Mul'));
    if (!gates.size) continue;
    // Every path from the pool must end at the gate, within a few nodes: a branch that reaches
    // the logits (a classifier head that also pools X) is not a gate.
    const branch = new Set<NodeProto>();
    const queue = [...view.consumers(pool.output![0])];
    let isGate = true;
    while (queue.length && isGate) {
      const n = queue.shift()!;
      if (gates.has(n) || branch.has(n)) continue;
      branch.add(n);
      const outs = (n.output ?? []).filter(Boolean);
      const next = outs.flatMap((o) => view.consumers(o));
      isGate =
        branch.size <= MAX_GATE_NODES &&
        next.length > 0 &&
        !outs.some((o) => view.isGraphOutput(o));
      queue.push(...next);
    }
    if (isGate) for (const n of branch) gated.set(n, x);
  }
  return gated;
}

/**
 * The activation reading `tensor`, if it is one ruledit models: its kind, the chain label and
 * the tensor it produces. `x * f(x)` pairs (two consumers of `tensor`) count as one activation.
 */
function activationAt(
  view: GraphView,
  tensor: string,
): { activation: Activation; label: string; output: string } | undefined {
  const step = view.next(tensor);
  if (step) {
    const node = step.node;
    const output = node.output![0];
    const found = (activation: Activation, label = node.opType!) => ({ activation, label, output });
    switch (node.opType) {
      case 'Relu':
        return found({ kind: 'relu' });
      case 'Clip': {
        const kind = clipKind(view, node);
        return kind && found({ kind }, kind === 'relu6' ? 'Clip(0,6)' : 'Clip(0,inf)');
      }
      case 'LeakyRelu':
        return found({ kind: 'leaky-relu', alpha: floatAttr(node, 'alpha', 0.01) });
      case 'Sigmoid':
        return found({ kind: 'sigmoid' });
      case 'Tanh':
        return found({ kind: 'tanh' });
      case 'HardSigmoid':
        return found({ kind: 'hard-sigmoid', ...hardSigmoidParams(node) });
      case 'HardSwish':
        return found({ kind: 'hardswish', alpha: 1 / 6, beta: 0.5 });
      case 'Gelu':
        return found({ kind: textAttr(node, 'approximate') === 'tanh' ? 'gelu-tanh' : 'gelu' });
    }
    return undefined;
  }
  // x * Sigmoid(x) (SiLU) and x * HardSigmoid(x) (hardswish): the gate and the product read x.
  const users = view.consumers(tensor);
  if (users.length !== 2 || view.isGraphOutput(tensor)) return undefined;
  const gate = users.find((n) => n.opType === 'Sigmoid' || n.opType === 'HardSigmoid');
  const mul = users.find((n) => n.opType === 'Mul');
  const gateOut = gate?.output![0];
  if (!gate || !mul || gate.input![0] !== tensor || view.consumers(gateOut!).length !== 1)
    return undefined;
  if (otherInput(mul, tensor) !== gateOut) return undefined;
  const output = mul.output![0];
  return gate.opType === 'Sigmoid'
    ? { activation: { kind: 'silu' }, label: 'SiLU', output }
    : { activation: { kind: 'hardswish', ...hardSigmoidParams(gate) }, label: 'Hardswish', output };
}

/** A Clip that is ReLU6 or ReLU; other clips end the block before them. */
function clipKind(view: GraphView, node: NodeProto): 'relu' | 'relu6' | undefined {
  const bounds = clipBounds(view, node);
  if (bounds?.min !== 0) return undefined;
  return bounds.max === 6 ? 'relu6' : bounds.max === Infinity ? 'relu' : undefined;
}

/** How an activation is named in tables and logs: 'relu6', 'leaky-relu(0.1)', 'hardswish'. */
export function activationName(a: Activation): string {
  return a.kind === 'leaky-relu' ? `leaky-relu(${a.alpha})` : a.kind;
}

/**
 * Find a block by name or index. Asking for a block that exists but cannot be edited is a user
 * error with the reason, unless `editableOnly` is false (taps work on any block).
 */
/**
 * The PyTorch module path of a node named by torch.onnx.export's scopes, as the user wrote it in
 * Python: '/layer4/layer4.1/conv2/Conv' -> 'layer4.1.conv2', '/features/features.1/features.1.0/
 * block/block.0/block.0.0/Conv' -> 'features.1.0.block.0.0'. Each scope either extends the one
 * before (a child of a Sequential: 'layer4' -> 'layer4.1') or names a child module ('conv2').
 * Names that are not scope paths come back as they are.
 */
export function modulePath(name: string): string {
  if (!name.startsWith('/')) return name;
  const parts: string[] = [];
  for (const seg of name.split('/').filter(Boolean).slice(0, -1)) {
    if (parts.length && seg.startsWith(`${parts.at(-1)}.`)) parts[parts.length - 1] = seg;
    else parts.push(seg);
  }
  return parts.length ? parts.join('.') : name;
}

export function findBlock(blocks: Block[], ref: string, editableOnly = true): Block {
  const trimmed = ref.trim();
  const block =
    blocks.find((b) => b.name === trimmed) ??
    blocks.find((b) => modulePath(b.name) === trimmed) ??
    (/^(block\.)?\d+$/.test(trimmed)
      ? blocks.find((b) => b.index === Number(trimmed.replace('block.', '')))
      : undefined);
  if (!block) {
    const names = blocks.filter((b) => b.editable).map((b) => b.name);
    const shown = names.slice(0, 8).join(', ') + (names.length > 8 ? ', ...' : '');
    throw new RuleditError(
      'no-block',
      `no layer named '${ref}'. Editable blocks: ${shown || 'none'} (run 'ruledit inspect MODEL' for the table)`,
    );
  }
  if (editableOnly && !block.editable) {
    throw new RuleditError(
      'not-editable',
      `layer '${block.name}' is not an editable block: ${block.reason}. Pick another block from 'ruledit inspect MODEL'`,
    );
  }
  return block;
}
