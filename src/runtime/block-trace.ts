import { batches, stackImages } from '../data/batches.js';
import { batchDims, type PreprocessSpec } from '../data/preprocess.js';
import { RuleditError } from '../errors.js';
import type { Block } from '../onnx/blocks.js';
import { GraphView } from '../onnx/graph.js';
import { modelInputs, type OnnxModel } from '../onnx/model.js';
import { tailModel } from '../onnx/tail-model.js';
import { tailFrom } from '../onnx/subgraph.js';
import {
  DEFAULT_BATCH,
  FeedRunner,
  imageOf,
  Runner,
  type RunResult,
  type Tapped,
} from './session.js';

/** One image's tensors read from the original model: the taps asked for, in order, and its logits. */
export interface TracedImage {
  tensors: Float32Array[];
  logits: Float32Array;
}

/**
 * A classifier's blocks instrumented (in the spirit of Bau's `nethook.Trace`): what flows through a
 * block for any images, read from the original model, and the network after the block run with
 * replaced weights. Images read once are kept, per image and set of tensors, under one byte budget
 * that the owner sets (a harness, the web editor, one edit) and frees with `release`: the safety
 * guard, the preserve term, fine-tuning's constants and the harness's tail predictions all read
 * through it, so repeated edits of a block run its images once.
 */
export class Traces {
  /** Per set of tapped tensors (a JSON list), per file: that image's tensors. */
  private readonly images = new Map<string, Map<string, TracedImage>>();
  /** Per tapped tensor, its shape without the batch dimension. */
  private readonly dims = new Map<string, number[]>();
  private readonly blocks = new Map<string, BlockTrace>();
  private readonly derived = new Map<string, unknown>();
  private bytes = 0;

  constructor(
    readonly model: OnnxModel,
    readonly spec: PreprocessSpec,
    readonly options: {
      threads?: number;
      batchSize?: number;
      /** Captured tensors kept at most (default 1 GiB); the oldest go first, never those in use. */
      maxBytes?: number;
    } = {},
  ) {}

  /** The trace of one block (the same object for the same block). */
  block(block: Block): BlockTrace {
    let trace = this.blocks.get(block.name);
    if (!trace) this.blocks.set(block.name, (trace = new BlockTrace(this, block)));
    return trace;
  }

  /** Refuse a trace of another model: its captures would be another network's tensors. */
  check(model: OnnxModel): this {
    if (model !== this.model)
      throw new RuleditError(
        'bad-option',
        '`traces` were opened on another model than the one edited',
      );
    return this;
  }

  get batchSize(): number {
    return this.options.batchSize ?? DEFAULT_BATCH;
  }

  /**
   * The tensors `taps` and the logits of each file through the original model, in order; files
   * not read before run `batchSize` at a time (told to `onImages` with how many have run).
   */
  async read(
    taps: string[],
    files: string[],
    onImages?: (done: number) => void,
  ): Promise<{ images: TracedImage[]; dims: number[][] }> {
    const id = JSON.stringify(taps);
    const known = this.images.get(id) ?? new Map<string, TracedImage>();
    this.images.set(id, known);
    const missing = [...new Set(files.filter((f) => !known.has(f)))];
    if (missing.length) {
      const input = modelInputs(this.model.proto)[0].name;
      const runner = await Runner.create(this.model, {
        taps: taps.filter((t) => t !== input),
        threads: this.options.threads,
      });
      let done = 0;
      try {
        const items = missing.map((file) => ({ file }));
        for await (const b of batches(items, this.spec, { batchSize: this.batchSize })) {
          const out = await runner.run(b.data, b.dims);
          const n = b.items.length;
          const all = { ...out.taps, [input]: { data: b.data, dims: b.dims } };
          for (const t of taps) this.dims.set(t, all[t].dims.slice(1));
          // Views of the batch's tensors, no copy: a tail run of the same batch feeds them whole.
          b.items.forEach((item, i) => {
            const image = {
              tensors: taps.map((t) => imageOf(all[t], i, n)),
              logits: imageOf(out.logits, i, n),
            };
            this.bytes += size(image);
            known.set(item.file, image);
          });
          onImages?.((done += n));
        }
      } finally {
        await runner.release();
      }
    }
    const images = files.map((f) => known.get(f)!);
    this.evict(new Set(files));
    return { images, dims: taps.map((t) => this.dims.get(t)!) };
  }

  /**
   * A value computed once from what the traces read (the guard's calibration of its images), kept
   * until `release`: it depends on the model and the images only.
   */
  remember<T>(key: string, make: () => T): T {
    if (!this.derived.has(key)) this.derived.set(key, make());
    return this.derived.get(key) as T;
  }

  async release(): Promise<void> {
    for (const trace of this.blocks.values()) await trace.release();
    this.blocks.clear();
    this.images.clear();
    this.derived.clear();
    this.bytes = 0;
  }

  /**
   * Oldest images go first once over the budget, never those of the read in progress. An image
   * is a view of its batch's tensors: their memory goes back once every image of the batch went.
   */
  private evict(inUse: Set<string>) {
    const max = this.options.maxBytes ?? 2 ** 30;
    for (const known of this.images.values())
      for (const [file, image] of known) {
        if (this.bytes <= max) return;
        if (inUse.has(file)) continue;
        known.delete(file);
        this.bytes -= size(image);
      }
  }
}

/**
 * One block of a traced classifier. Its tail is the network from the block's own node on (a
 * residual unit's downsample conv on the skip path, which exporters write after the unit, is
 * computed from its input too); what the tail reads from before the block is its `inputs`.
 */
export class BlockTrace {
  /** The tensors the tail reads from before it, the block's key first. */
  readonly inputs: string[];
  private readonly from;
  private readonly sessions = new Map<string, Promise<FeedRunner | undefined>>();

  constructor(
    readonly traces: Traces,
    readonly block: Block,
  ) {
    const graph = traces.model.proto.graph!;
    this.from = new GraphView(graph).producer(block.linearOutput);
    this.inputs = tailFrom(graph, block.key, this.from).inputs;
  }

  /** The tail's inputs and the logits of each file, from the original model. */
  readTail(files: string[], onImages?: (done: number) => void) {
    return this.traces.read(this.inputs, files, onImages);
  }

  /** The tail's inputs and the logits of in-memory images (not kept): fine-tuning's exemplars. */
  async readImages(images: Float32Array[]): Promise<RunResult> {
    const { model, spec, options } = this.traces;
    const input = modelInputs(model.proto)[0].name;
    const runner = await Runner.create(model, {
      taps: this.inputs.filter((t) => t !== input),
      threads: options.threads,
    });
    try {
      const out = await runner.runImages(images, (n) => batchDims(spec, n));
      return { logits: out.logits, taps: { ...out.taps, [input]: stackImages(images, spec) } };
    } finally {
      await runner.release();
    }
  }

  /**
   * Logits of the tail on files read before (`readTail`), with the named initializers replaced;
   * undefined when one of them lies before the block (the tail cannot show its change).
   */
  async runTail(files: string[], weights: Record<string, Tapped>): Promise<Tapped[] | undefined> {
    const tail = await this.session(Object.keys(weights).sort());
    if (!tail) return undefined;
    const { images, dims } = await this.readTail(files);
    const size = this.traces.batchSize;
    const logits: Tapped[] = [];
    for (let start = 0; start < images.length; start += size) {
      const rows = images.slice(start, start + size);
      const feeds: Record<string, Tapped> = { ...weights };
      this.inputs.forEach((name, k) => {
        feeds[name] = {
          data: stackRows(rows.map((r) => r.tensors[k])),
          dims: [rows.length, ...dims[k]],
        };
      });
      logits.push(await tail.run(feeds));
    }
    return logits;
  }

  async release(): Promise<void> {
    for (const s of this.sessions.values()) await (await s)?.release();
    this.sessions.clear();
  }

  private session(free: string[]) {
    const id = JSON.stringify(free);
    if (!this.sessions.has(id)) {
      const { model, options } = this.traces;
      const tail = tailModel(model.proto, this.block.key, free, this.from);
      const read = new Set((tail.proto.graph!.input ?? []).map((i) => i.name));
      const session = free.every((f) => read.has(f))
        ? FeedRunner.create(tail.proto, options.threads)
        : Promise.resolve(undefined);
      session.catch(() => this.sessions.delete(id));
      this.sessions.set(id, session);
    }
    return this.sessions.get(id)!;
  }
}

/** Rows as one batch: the batch they were read in when they are its consecutive views, else a copy. */
export function stackRows(rows: Float32Array[]): Float32Array {
  const [first] = rows;
  const n = first.length;
  const contiguous = rows.every(
    (r, i) => r.buffer === first.buffer && r.byteOffset === first.byteOffset + i * n * 4,
  );
  if (contiguous) return new Float32Array(first.buffer, first.byteOffset, n * rows.length);
  const data = new Float32Array(n * rows.length);
  rows.forEach((r, i) => data.set(r, i * n));
  return data;
}

function size(image: TracedImage): number {
  return image.tensors.reduce((a, t) => a + t.byteLength, image.logits.byteLength);
}

/**
 * `work` with the caller's traces (checked to be of this model), or with traces of its own that
 * are released when it ends: an edit called alone keeps nothing after it.
 */
export async function withTraces<T>(
  given: Traces | undefined,
  model: OnnxModel,
  spec: PreprocessSpec,
  threads: number | undefined,
  work: (traces: Traces) => Promise<T>,
): Promise<T> {
  if (given) return work(given.check(model));
  const own = new Traces(model, spec, { threads });
  try {
    return await work(own);
  } finally {
    await own.release();
  }
}
