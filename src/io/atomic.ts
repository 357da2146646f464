import { randomBytes } from 'node:crypto';
import {
  accessSync,
  constants,
  existsSync,
  readdirSync,
  realpathSync,
  rmSync,
  statSync,
} from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
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
  if (options.mkdir) await makeFolder(path, dirname(target));
  checkOutput(path, options);
  sweepStale(target);
  const temp = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  unfinished.add(temp);
  try {
    await writeFile(temp, data);
    await rename(temp, target);
  } catch (e) {
    await rm(temp, { force: true });
    cannotWrite(path)(e);
  } finally {
    unfinished.delete(temp);
  }
}

/** Temporary files of writes in progress (a cache fills many at once): one exit handler for all. */
const unfinished = new Set<string>();

// Exit handlers must be synchronous; the CLI turns Ctrl-C and SIGTERM into an exit so this runs.
process.on('exit', () => {
  for (const temp of unfinished) rmSync(temp, { force: true });
});

/**
 * Every reason a write of `path` would be refused, checked without writing: commands call it
 * before their work, so a bad output path fails in a second, not after an hour of computing.
 */
export function checkOutput(path: string, options: Omit<WriteOptions, 'mkdir'> = {}): void {
  const target = resolve(path);
  const real = realPath(target);
  for (const p of options.protect ?? []) {
    // Real paths: a link to an input (or an input reached through a link) is that input.
    if (p && realPath(resolve(p)) === real) {
      throw new RuleditError(
        'same-as-input',
        `refusing to overwrite the input file ${path}; choose another output path`,
      );
    }
  }
  if (existsSync(target) && statSync(target).isDirectory())
    throw new RuleditError('cannot-write', `cannot write ${path}: it is a folder`);
  if (!options.force && existsSync(target)) {
    throw new RuleditError('exists', `${path} already exists; pass \`force\` to replace it`);
  }
  if (!existsSync(dirname(target))) {
    throw new RuleditError('not-found', `output folder ${dirname(path)} does not exist`);
  }
  try {
    accessSync(dirname(target), constants.W_OK);
  } catch (e) {
    cannotWrite(path)(e);
  }
}

/**
 * Temporary files of this target left by a process that was killed (kill -9 runs no handler):
 * removed on the next write, once their process is gone.
 */
function sweepStale(target: string): void {
  const prefix = `${basename(target)}.tmp-`;
  let names: string[];
  try {
    names = readdirSync(dirname(target)).filter((n) => n.startsWith(prefix));
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(name.slice(prefix.length).split('-')[0]);
    if (Number.isInteger(pid) && !alive(pid)) rmSync(join(dirname(target), name), { force: true });
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // alive, another user's
  }
}

/**
 * The folder of `path`, made with its parents. A recursive mkdir reports ENOENT where a parent
 * refuses (a read-only file system, say): the deepest existing folder is asked why.
 */
async function makeFolder(path: string, folder: string): Promise<void> {
  await mkdir(folder, { recursive: true }).catch((e: unknown) => {
    let parent = folder;
    while (!existsSync(parent) && dirname(parent) !== parent) parent = dirname(parent);
    try {
      accessSync(parent, constants.W_OK);
    } catch (why) {
      cannotWrite(path)(why);
    }
    cannotWrite(path)(e);
  });
}

/** File system refusals (permissions, read-only, full disk, a folder in the way) in one line. */
const cannotWrite =
  (path: string) =>
  (e: unknown): never => {
    const err = e as NodeJS.ErrnoException;
    const why: Record<string, string> = {
      EACCES: 'permission denied',
      EPERM: 'permission denied',
      EROFS: 'the file system is read-only',
      ENOSPC: 'the disk is full',
      EDQUOT: 'the disk quota is exceeded',
      EISDIR: 'it is a folder',
      ENOTDIR: 'a part of the path is not a folder',
    };
    if (err?.code && why[err.code])
      throw new RuleditError('cannot-write', `cannot write ${path}: ${why[err.code]}`);
    throw e;
  };

/** The path with every link resolved; a path that does not exist yet resolves through its folder. */
function realPath(path: string): string {
  try {
    return realpathSync.native(path);
  } catch {
    try {
      return resolve(realpathSync.native(dirname(path)), basename(path));
    } catch {
      return path;
    }
  }
}
