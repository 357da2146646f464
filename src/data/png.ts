import sharp from 'sharp';

/**
 * Raw pixels (row-major, channels interleaved; values rounded and clamped to 0..255) as PNG bytes:
 * the one encoder of the reports, the web editor and the scene world.
 */
export function rawPng(
  pixels: ArrayLike<number>,
  width: number,
  height: number,
  channels: 1 | 3 = 3,
): Promise<Buffer> {
  const bytes =
    pixels instanceof Uint8Array
      ? pixels
      : Uint8Array.from(pixels, (v) => Math.max(0, Math.min(255, Math.round(v))));
  return sharp(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length), {
    raw: { width, height, channels },
  })
    .png()
    .toBuffer();
}
