import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { writeFileAtomic } from '../io/atomic.js';
import { sha256 } from '../io/digest.js';
import { readInput } from '../io/read-input.js';
import type { PreprocessSpec } from './preprocess.js';

/**
 * A file's 8-bit model pixels (cropped and resized, before normalization), kept in `folder` for
 * data sets evaluated again and again (`eval --cache-pixels`): reading 150 kB back costs a tenth
 * of decoding a JPEG, and gives the same pixels. An entry is known by the file's path, size and
 * modification time, the preprocessing and libvips' version, and holds the pixels and their
 * CRC-32: a damaged or foreign entry is decoded again and replaced.
 */
export async function cachedPixels(
  file: string,
  spec: PreprocessSpec,
  folder: string,
  decode: (bytes: Buffer) => Promise<Buffer>,
): Promise<Buffer> {
  const path = resolve(file);
  const seen = await stat(path).catch(() => undefined);
  const key = seen?.isFile()
    ? sha256(JSON.stringify([1, path, seen.size, seen.mtimeMs, spec, sharp.versions.vips]))
    : undefined;
  const entry = key && join(folder, 'pixels', key.slice(0, 2), key);
  const size = 3 * spec.size[0] * spec.size[1];
  if (entry) {
    const kept = await readFile(entry).catch(() => undefined);
    if (kept?.length === size + 4 && crc32(kept.subarray(0, size)) === kept.readUInt32LE(size))
      return kept.subarray(0, size);
  }
  // readInput says why a missing file or a FIFO cannot be read.
  const pixels = await decode(await readInput(file, 'image'));
  if (entry && pixels.length === size) {
    const crc = Buffer.alloc(4);
    crc.writeUInt32LE(crc32(pixels));
    // The cache saves time, it is not needed: a folder that cannot be written is no error.
    await writeFileAtomic(entry, Buffer.concat([pixels, crc]), { force: true, mkdir: true }).catch(
      () => {},
    );
  }
  return pixels;
}
