import { RuleditError } from '../errors.js';
import { DataType, type TensorProto, toNumber } from './proto.js';

export function dimsOf(t: TensorProto): number[] {
  return (t.dims ?? []).map(toNumber);
}

/** Float contents of a FLOAT (or DOUBLE/INT) tensor, whether stored as raw bytes or typed fields. */
export function tensorToFloat32(t: TensorProto): Float32Array {
  const n = dimsOf(t).reduce((a, b) => a * b, 1);
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData : undefined;
  const type = t.dataType ?? DataType.FLOAT;
  // A shape and data that disagree (a damaged or hand-edited file) would be read short, padded
  // with zeros, or fail in an allocation; said here, once, for every reader of weights.
  const width = type === DataType.FLOAT ? 4 : type === DataType.DOUBLE ? 8 : 0;
  const stored = raw ? raw.length / (width || 1) : undefined;
  if (!(n >= 0) || (width && stored !== undefined && stored !== n))
    throw new RuleditError(
      'bad-weights',
      `tensor '${t.name}' has shape [${dimsOf(t).join(', ')}] but holds ${stored ?? 'other'} values: the file is damaged`,
    );
  if (type === DataType.FLOAT) {
    if (raw) {
      // Copy: raw bytes may sit at an unaligned offset inside the file buffer.
      const out = new Float32Array(n);
      new Uint8Array(out.buffer).set(raw.subarray(0, n * 4));
      return out;
    }
    return Float32Array.from(t.floatData ?? []);
  }
  if (type === DataType.DOUBLE) {
    if (raw) {
      const f64 = new Float64Array(n);
      new Uint8Array(f64.buffer).set(raw.subarray(0, n * 8));
      return Float32Array.from(f64);
    }
    return Float32Array.from(t.doubleData ?? []);
  }
  return Float32Array.from(tensorToNumbers(t));
}

/** Integer contents (INT64/INT32 shapes, axes, pads) as plain numbers. */
export function tensorToNumbers(t: TensorProto): number[] {
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData : undefined;
  const type = t.dataType;
  if (type === DataType.INT64) {
    if (!raw) return (t.int64Data ?? []).map(toNumber);
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    return Array.from({ length: raw.byteLength / 8 }, (_, i) =>
      Number(view.getBigInt64(i * 8, true)),
    );
  }
  if (type === DataType.INT32) {
    if (!raw) return [...(t.int32Data ?? [])];
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    return Array.from({ length: raw.byteLength / 4 }, (_, i) => view.getInt32(i * 4, true));
  }
  if (type === DataType.FLOAT || type === DataType.DOUBLE) return [...tensorToFloat32(t)];
  throw new RuleditError(
    'unsupported-tensor',
    `tensor '${t.name}' has data type ${type}; only float and integer tensors are supported`,
  );
}

/** A FLOAT tensor with the given name, dims and data, stored as little-endian raw bytes. */
export function floatTensor(name: string, dims: number[], data: Float32Array): TensorProto {
  const n = dims.reduce((a, b) => a * b, 1);
  if (data.length !== n) {
    throw new RuleditError(
      'bad-shape',
      `tensor '${name}': ${data.length} values given for shape [${dims.join(', ')}] (${n} values)`,
    );
  }
  const bytes = new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + n * 4));
  return { name, dims, dataType: DataType.FLOAT, rawData: bytes };
}

export function int64Tensor(name: string, values: number[]): TensorProto {
  const bytes = new Uint8Array(values.length * 8);
  const view = new DataView(bytes.buffer);
  values.forEach((v, i) => view.setBigInt64(i * 8, BigInt(v), true));
  return { name, dims: [values.length], dataType: DataType.INT64, rawData: bytes };
}
