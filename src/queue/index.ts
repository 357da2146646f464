/**
 * The harness beyond one machine (`ruledit/queue`): a BullMQ executor for `runHarness` and the
 * worker that runs its trials. Kept apart from `ruledit/protocol` so that importing the protocol
 * does not load a Redis client.
 */
export { queueExecutor, type QueueOptions } from './coordinator.js';
export { startWorker, type WorkerOptions, type RunningWorker } from './worker.js';
export { studyOf, type Study } from './study.js';
