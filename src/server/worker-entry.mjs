// A worker thread starts without the parent's loaders: register tsx here (as bin/ruledit.js does)
// so the TypeScript job code runs with no build step, from whatever folder the server started in.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
