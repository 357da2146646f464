import type { OnnxModel } from './model.js';
import { modelFromProto } from './model.js';
import type { AttributeProto, NodeProto, TensorProto, ValueInfoProto } from './proto.js';
import { onnx } from './proto.js';
import { floatTensor } from './tensor.js';

export type AttrValue = number | number[] | string | TensorProto | { float: number };

const AttrType = onnx.AttributeProto.AttributeType;

/**
 * A minimal ONNX graph builder: small networks made in code for tests, examples and benchmarks.
 * Integers are INT attributes; wrap a float as `{ float: x }`.
 */
export class GraphBuilder {
  private readonly nodes: NodeProto[] = [];
  private readonly inits: TensorProto[] = [];
  private readonly inputs: ValueInfoProto[] = [];
  private readonly outputs: ValueInfoProto[] = [];
  private counter = 0;

  constructor(private readonly opset = 13) {}

  input(name: string, dims: (number | string)[]): string {
    this.inputs.push(valueInfo(name, dims));
    return name;
  }

  init(name: string, dims: number[], data: Float32Array): string {
    this.inits.push(floatTensor(name, dims, data));
    return name;
  }

  tensor(t: TensorProto): string {
    this.inits.push(t);
    return t.name!;
  }

  node(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, name?: string): string {
    const nodeName = name ?? `${op.toLowerCase()}${this.counter++}`;
    this.nodes.push({
      opType: op,
      name: nodeName,
      input: inputs,
      output: [nodeName],
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return nodeName;
  }

  output(name: string, dims: (number | string)[] = []): void {
    this.outputs.push(valueInfo(name, dims));
  }

  build(): OnnxModel {
    return modelFromProto({
      irVersion: 8,
      opsetImport: [{ domain: '', version: this.opset }],
      producerName: 'ruledit',
      graph: {
        name: 'graph',
        node: this.nodes,
        initializer: this.inits,
        input: this.inputs,
        output: this.outputs,
      },
    });
  }
}

/** A float tensor's declaration; without dims, its shape is left to the runtime. */
export function valueInfo(name: string, dims?: (number | string)[]): ValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        ...(dims
          ? {
              shape: {
                dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
              },
            }
          : {}),
      },
    },
  };
}

function attribute(name: string, v: AttrValue): AttributeProto {
  if (typeof v === 'number') return { name, type: AttrType.INT, i: v };
  if (typeof v === 'string') return { name, type: AttrType.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: AttrType.INTS, ints: v };
  if ('float' in v) return { name, type: AttrType.FLOAT, f: v.float };
  return { name, type: AttrType.TENSOR, t: v };
}
