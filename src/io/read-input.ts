import { readFile, stat } from 'node:fs/promises';
import { RuleditError } from '../errors.js';

/**
 * A file the user named, read whole, or a one-line error saying why not. Only regular files are
 * opened: a FIFO blocks its reader forever (deaf to SIGINT and SIGTERM while it waits in open) and
 * a device such as /dev/zero never ends, so both are refused from stat, before anything is opened.
 * `what` names the file in the messages ("image", "mask", "labels file").
 */
export async function readInput(path: string, what: string): Promise<Buffer> {
  await checkRegularFile(path, what);
  try {
    return await readFile(path);
  } catch (e) {
    throw new RuleditError('unreadable', `cannot read ${what} ${path}: ${(e as Error).message}`);
  }
}

/** readInput's refusals without the read, for a reader that opens the file itself (sharp). */
export async function checkRegularFile(path: string, what: string): Promise<void> {
  let kind;
  try {
    kind = await stat(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR')
      throw new RuleditError('not-found', `${what} not found: ${path}`);
    throw new RuleditError('unreadable', `cannot read ${what} ${path}: ${(e as Error).message}`);
  }
  if (kind.isDirectory())
    throw new RuleditError('not-a-file', `${what} ${path} is a folder; give the path of a file`);
  if (!kind.isFile())
    throw new RuleditError(
      'not-a-file',
      `${what} ${path} is not a regular file (a device, FIFO or socket): ruledit reads only files`,
    );
}
