import { EventEmitter } from 'node:events';
import { isRuleditError, RuleditError } from '../errors.js';
import type { JobView } from './wire.js';

export type JobState = JobView['state'];

/** What a job's work function gets: progress reporting and the cancel signal. */
export interface JobContext {
  signal: AbortSignal;
  progress(fraction: number, message?: string): void;
  /** Throws when the job was cancelled: called between steps (an edit cannot stop mid-solve). */
  checkpoint(): void;
}

export interface JobRecord extends JobView {
  state: JobState;
  /** ms since the epoch; startedAt/finishedAt are absent until they happen. */
  queuedAt: number;
  startedAt?: number;
  finishedAt?: number;
}

interface Entry {
  record: JobRecord;
  work: (ctx: JobContext) => Promise<unknown>;
  abort: AbortController;
}

/**
 * Long work (edits, fine-tuning, evaluation) runs here, off the request path and strictly one job
 * at a time: two edits posted together both build on the same current model, so running them
 * interleaved would let the second overwrite the first. Every change of a record is emitted as
 * 'update' for the server-sent events.
 */
export class JobQueue extends EventEmitter {
  constructor() {
    super();
    // One listener per open page (server-sent events); a few tabs are not a leak.
    this.setMaxListeners(100);
  }

  private readonly entries = new Map<string, Entry>();
  private readonly waiting: Entry[] = [];
  private running = false;
  private next = 1;

  submit(kind: string, work: (ctx: JobContext) => Promise<unknown>): JobRecord {
    const record: JobRecord = {
      id: String(this.next++),
      kind,
      state: 'queued',
      queuedAt: Date.now(),
      progress: 0,
      message: 'queued',
    };
    const entry = { record, work, abort: new AbortController() };
    this.entries.set(record.id, entry);
    this.waiting.push(entry);
    this.update(record);
    setImmediate(() => void this.drain());
    return record;
  }

  get(id: string): JobRecord {
    const e = this.entries.get(id);
    if (!e) throw new RuleditError('no-job', `no job ${id}`);
    return e.record;
  }

  list(): JobRecord[] {
    return [...this.entries.values()].map((e) => e.record);
  }

  /** A queued job is dropped at once; a running one stops at its next checkpoint. */
  cancel(id: string): JobRecord {
    const e = this.entries.get(id);
    if (!e) throw new RuleditError('no-job', `no job ${id}`);
    if (e.record.state === 'queued') {
      this.waiting.splice(this.waiting.indexOf(e), 1);
      this.finish(e.record, 'cancelled', { message: 'cancelled before it started' });
    } else if (e.record.state === 'running') {
      e.abort.abort();
      e.record.message = 'cancelling at the next step';
      this.update(e.record);
    }
    return e.record;
  }

  /** Resolves when no job is queued or running (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running || this.waiting.length) await new Promise((r) => setTimeout(r, 20));
  }

  private async drain(): Promise<void> {
    if (this.running) return;
    const entry = this.waiting.shift();
    if (!entry) return;
    this.running = true;
    const { record, abort } = entry;
    record.state = 'running';
    record.startedAt = Date.now();
    record.message = 'started';
    this.update(record);
    const ctx: JobContext = {
      signal: abort.signal,
      progress: (fraction, message) => {
        record.progress = Math.max(0, Math.min(1, fraction));
        if (message) record.message = message;
        this.update(record);
      },
      checkpoint: () => {
        if (abort.signal.aborted) throw new Cancelled();
      },
    };
    try {
      const result = await entry.work(ctx);
      if (abort.signal.aborted) throw new Cancelled();
      this.finish(record, 'done', { result, progress: 1, message: 'done' });
    } catch (e) {
      if (e instanceof Cancelled || abort.signal.aborted)
        this.finish(record, 'cancelled', { message: 'cancelled' });
      else
        this.finish(record, 'failed', {
          error: (e as Error).message,
          message: 'failed',
          ...(isRuleditError(e) ? { code: e.code } : {}),
        });
    } finally {
      this.running = false;
      setImmediate(() => void this.drain());
    }
  }

  private finish(record: JobRecord, state: JobState, fields: Partial<JobRecord>): void {
    Object.assign(record, fields, { state, finishedAt: Date.now() });
    this.update(record);
    // A long session keeps the last finished jobs only: their results hold pictures and reports.
    const finished = [...this.entries.values()].filter((e) => e.record.finishedAt !== undefined);
    for (const old of finished.slice(0, Math.max(0, finished.length - KEPT_JOBS)))
      this.entries.delete(old.record.id);
  }

  private update(record: JobRecord): void {
    this.emit('update', { ...record });
  }
}

class Cancelled extends Error {}

/** Finished jobs kept for /api/jobs (older ones answer 'no job'). */
export const KEPT_JOBS = 20;
