import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';

/** sha256 of bytes, as hex. */
export const sha256 = (bytes: Uint8Array | string) =>
  createHash('sha256').update(bytes).digest('hex');

const known = new Map<string, { size: number; mtimeMs: number; digest: Promise<string> }>();

/**
 * sha256 of a file's bytes, remembered while its size and modification time stay the same (a
 * queue worker checks the same images for every study that uses them).
 */
export async function fileDigest(path: string): Promise<string> {
  const { size, mtimeMs } = await stat(path);
  const seen = known.get(path);
  if (seen && seen.size === size && seen.mtimeMs === mtimeMs) return seen.digest;
  const digest = new Promise<string>((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
  known.set(path, { size, mtimeMs, digest });
  digest.catch(() => known.delete(path));
  return digest;
}
