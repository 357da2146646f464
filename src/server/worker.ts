import { parentPort, workerData } from 'node:worker_threads';
import { runCompare, runEdit, type EditTask } from './tasks.js';

// One job per worker: the main thread terminates the worker to cancel, which stops even a solver
// in the middle of its loop and leaves nothing behind (the worker writes no files but caches).
const task = workerData as EditTask;
const say = (fraction: number, message: string) =>
  parentPort!.postMessage({ type: 'progress', fraction, message });
try {
  const result = task.kind === 'compare' ? await runCompare(task, say) : await runEdit(task, say);
  parentPort!.postMessage({ type: 'done', result });
} catch (e) {
  parentPort!.postMessage({
    type: 'error',
    message: (e as Error).message,
    code: (e as { code?: string }).code,
  });
}
