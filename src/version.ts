import { readFileSync } from 'node:fs';

/** The package version, recorded in every edit so an edit can be traced to the code that made it. */
export const VERSION: string = JSON.parse(
  readFileSync(new URL('../package.json', import.meta.url), 'utf8'),
).version;
