import { Redis } from 'ioredis';
import { RuleditError } from '../errors.js';

/** The one BullMQ queue of harness trials; studies are told apart by their content hash. */
export const QUEUE_NAME = 'ruledit-trials';

/**
 * A Redis connection for BullMQ (which needs `maxRetriesPerRequest: null`), after a probe that
 * fails fast: ioredis would otherwise retry an unreachable server forever, in silence.
 */
export async function connectQueue(url: string): Promise<() => Redis> {
  if (!/^rediss?:\/\//.test(url))
    throw new RuleditError(
      'bad-option',
      `\`queue\` must be a Redis URL (redis://HOST:PORT/DB), got '${url}'`,
    );
  const probe = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 5000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  probe.on('error', () => {}); // the connect below reports it
  try {
    await probe.connect();
    await probe.ping();
  } catch (e) {
    throw new RuleditError(
      'no-queue',
      `cannot reach Redis at ${url} (${(e as Error).message}): start redis-server there, or run without \`queue\``,
    );
  } finally {
    probe.disconnect();
  }
  return () => new Redis(url, { maxRetriesPerRequest: null });
}
