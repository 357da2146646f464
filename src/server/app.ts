import { randomBytes, timingSafeEqual } from 'node:crypto';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyInstance } from 'fastify';
import { isRuleditError } from '../errors.js';
import { registerRoutes } from './routes.js';
import { Workbench, type WorkbenchOptions } from './workbench.js';

export interface ServerOptions extends WorkbenchOptions {
  /** Session token every /api call must carry; random when not given. */
  token?: string;
  /** Largest request body in bytes (uploads come base64 in JSON); default 8 MB. */
  bodyLimit?: number;
  /** Folder of the built page (see web.ts); no page is served without one. */
  webRoot?: string;
  /** The address the server listens on: requests must name it (or localhost) as their Host. */
  host?: string;
}

export const TOKEN_HEADER = 'x-ruledit-token';

/** HTTP status for each user error code; the rest are 400. */
const STATUS: Record<string, number> = {
  forbidden: 403,
  'not-found': 404,
  'no-job': 404,
  'no-edit': 409,
  'changed-since': 409,
};

export async function createServer(
  options: ServerOptions,
): Promise<{ app: FastifyInstance; workbench: Workbench; token: string }> {
  const token = options.token ?? randomBytes(24).toString('base64url');
  const workbench = await Workbench.open(options);
  const app = Fastify({
    bodyLimit: options.bodyLimit ?? 8 * 1024 * 1024,
    logger: false,
    // A field the schema does not know is a caller's mistake (400), not something to drop silently.
    ajv: { customOptions: { removeAdditional: false } },
  });

  // A page on another site that rebinds its DNS name to this address, or posts to it, names its
  // own host: only this server's names are answered.
  const hosts = new Set(['127.0.0.1', 'localhost', '::1', options.host ?? '127.0.0.1']);
  const named = (h: string | undefined) => {
    if (!h) return false;
    try {
      return hosts.has(
        new URL(h.includes('://') ? h : `http://${h}`).hostname.replace(/^\[|\]$/g, ''),
      );
    } catch {
      return false;
    }
  };
  app.addHook('onRequest', async (req, reply) => {
    const origin = req.headers.origin;
    if (!named(req.headers.host) || (origin !== undefined && !named(origin)))
      return reply.code(403).send({
        error: `forbidden: the request names another host (Host ${req.headers.host}, Origin ${origin ?? '-'})`,
        code: 'forbidden-host',
      });
  });

  // The token guards the API (it can read the --data folders and run jobs); the page itself is public.
  app.addHook('onRequest', async (req, reply) => {
    // Decided by the matched route, not the raw URL, so no spelling of a path slips past.
    if (!req.routeOptions.url?.startsWith('/api/')) return;
    const given = req.headers[TOKEN_HEADER] ?? (req.query as { token?: string }).token;
    if (typeof given !== 'string' || !same(given, token)) {
      return reply
        .code(401)
        .send({ error: 'missing or wrong session token: open the URL that ruledit serve printed' });
    }
  });

  app.setErrorHandler((error, _req, reply) => {
    const e = error as Error & { code?: string; statusCode?: number; validation?: unknown };
    if (isRuleditError(e))
      return reply.code(STATUS[e.code] ?? 400).send({ error: e.message, code: e.code });
    if (e.validation)
      return reply.code(400).send({ error: `invalid request: ${e.message}`, code: 'bad-request' });
    if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
      return reply.code(413).send({
        error: `the upload is larger than the ${Math.round((options.bodyLimit ?? 8 << 20) / (1 << 20))} MB limit`,
        code: 'too-large',
      });
    if (e.statusCode && e.statusCode < 500) {
      // Malformed JSON and the like: fastify's message names what was wrong.
      return reply
        .code(e.statusCode)
        .send({ error: `bad request: ${e.message}`, code: e.code ?? 'bad-request' });
    }
    reply.log.error(e);
    return reply.code(500).send({ error: `internal error: ${e.message}` });
  });

  registerRoutes(app, workbench);
  if (options.webRoot)
    await app.register(fastifyStatic, { root: options.webRoot, index: 'index.html' });
  return { app, workbench, token };
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
