import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from './atomic.js';
import { fileDigest, sha256 } from './digest.js';

/**
 * Cache files checked on read. Each file's sha256 is kept next to it (FILE.sha256), written after
 * the file, so a file edited by hand, damaged, or left without its digest (an older cache, an
 * interrupted write) is not trusted: the caller makes it again.
 */
export async function writeChecked(file: string, bytes: Uint8Array | string): Promise<void> {
  await writeFileAtomic(file, bytes, { force: true, mkdir: true });
  await writeFileAtomic(`${file}.sha256`, sha256(bytes), { force: true });
}

/** 'ok' when the file is there and matches its digest. */
export async function checkFile(file: string): Promise<'ok' | 'missing' | 'damaged'> {
  if (!existsSync(file)) return 'missing';
  const digest = await readFile(`${file}.sha256`, 'utf8').catch(() => '');
  return digest.trim() === (await fileDigest(file).catch(() => undefined)) ? 'ok' : 'damaged';
}
