import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * The on-disk cache every stage shares (key statistics, transformed images, concept indexes, the
 * built page): the given folder, else $RULEDIT_CACHE, else $XDG_CACHE_HOME/ruledit.
 */
export function cacheDir(given?: string): string {
  return (
    given ??
    process.env.RULEDIT_CACHE ??
    join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'ruledit')
  );
}
