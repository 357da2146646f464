/**
 * Float64 values as their bytes and back: how statistics travel in JSON (base64 of these bytes),
 * to the cache and through the queue, without a digit lost.
 */
export function float64Bytes(values: Float64Array): Buffer {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
}

/** The values of `bytes` (a copy, aligned); their length must be a multiple of 8. */
export function float64Of(bytes: Uint8Array): Float64Array {
  return new Float64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
}
