// `ruledit/server`: the local web editor's server (Fastify), loaded only from this subpath.
export { createServer, type ServerOptions } from './app.js';
