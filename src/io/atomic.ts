import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { RuleditError } from '../errors.js';

export interface WriteOptions {
  /** Replace an existing file. */
  force?: boolean;
  /** Files that must never be written (the inputs of the job). */
  protect?: (string | undefined)[];
  /** Create the folder if it is missing (caches), instead of refusing. */
  mkdir?: boolean;
}

/**
 * Write through a temporary file in the same folder and rename it into place, so a reader never
 * sees half a file, and an interrupted write leaves nothing behind under the real name.
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | string,
  options: WriteOptions = {},
): Promise<void> {
  const target = resolve(path);
  for (const p of options.protect ?? []) {
    if (p && resolve(p) === target) {
      throw new RuleditError(
        'same-as-input',
        `refusing to overwrite the input file ${path}; choose another output path`,
      );
    }
  }
  if (!options.force && existsSync(target)) {
    throw new RuleditError('exists', `${path} already exists; pass \`force\` to replace it`);
  }
  if (options.mkdir) await mkdir(dirname(target), { recursive: true });
  if (!existsSync(dirname(target))) {
    throw new RuleditError('not-found', `output folder ${dirname(path)} does not exist`);
  }
  const temp = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  // Exit handlers must be synchronous; the CLI turns Ctrl-C into an exit so this runs.
  const cleanup = () => rmSync(temp, { force: true });
  process.once('exit', cleanup);
  try {
    await writeFile(temp, data);
    await rename(temp, target);
  } catch (e) {
    await rm(temp, { force: true });
    throw e;
  } finally {
    process.off('exit', cleanup);
  }
}
