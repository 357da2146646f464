import { Worker } from 'node:worker_threads';
import { RuleditError } from '../errors.js';
import type { JobContext } from './jobs.js';
import type { EditTask } from './tasks.js';

// Compiled, the worker is plain JS; run from sources (tests, development) it needs a small entry
// that registers tsx first (worker-entry.mjs), since a worker starts without the parent's loaders.
const WORKER = import.meta.url.endsWith('.ts') ? './worker-entry.mjs' : './worker.js';

/** Run a task in a fresh worker thread. */
export function inWorker<T>(task: EditTask, ctx: JobContext): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const worker = new Worker(new URL(WORKER, import.meta.url), { workerData: task });
    let settled = false;
    const settle = (f: () => void) => {
      if (settled) return;
      settled = true;
      ctx.signal.removeEventListener('abort', onAbort);
      f();
    };
    const onAbort = () => {
      void worker.terminate();
      settle(() => reject(new RuleditError('cancelled', 'cancelled')));
    };
    ctx.signal.addEventListener('abort', onAbort);
    worker.on(
      'message',
      (m: { type: string; fraction?: number; message?: string; result?: T; code?: string }) => {
        if (m.type === 'progress') ctx.progress(m.fraction!, m.message);
        else if (m.type === 'done') settle(() => resolve(m.result as T));
        else if (m.type === 'error')
          settle(() => reject(new RuleditError(m.code ?? 'job-failed', m.message!)));
        if (m.type !== 'progress') void worker.terminate();
      },
    );
    worker.on('error', (e) => settle(() => reject(e)));
    worker.on('exit', (code) =>
      settle(() => reject(new Error(`the job's worker stopped (exit ${code})`))),
    );
  });
}
