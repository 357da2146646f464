import { availableParallelism } from 'node:os';
import ort from 'onnxruntime-node';
import { RuleditError } from '../errors.js';
import type { OnnxModel } from '../onnx/model.js';
import type { ModelProto } from '../onnx/proto.js';
import { modelInputs, serializeModel } from '../onnx/model.js';
import { withDynamicBatch } from '../onnx/batch.js';
import { withTaps } from '../onnx/taps.js';

export interface SessionOptions {
  /** Tensors to return next to the logits (keys, values, anything with a name in the graph). */
  taps?: string[];
  /** ONNX Runtime intra-op threads; 0 = one per core. */
  threads?: number;
}

export interface Tapped {
  data: Float32Array;
  dims: number[];
}

/** Image i of a batch of n as a view (no copy) of the batch tensor's data. */
export function imageOf(t: Tapped, i: number, n: number): Float32Array {
  const size = t.data.length / n;
  return t.data.subarray(i * size, (i + 1) * size);
}

export interface RunResult {
  logits: Tapped;
  taps: Record<string, Tapped>;
}

/** One ONNX Runtime session over a model (plus taps), fed NCHW/NHWC float batches. */
export class Runner {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly input: string,
    readonly output: string,
    readonly taps: string[],
    private readonly where: string,
  ) {}

  static async create(model: OnnxModel, options: SessionOptions = {}): Promise<Runner> {
    const taps = options.taps ?? [];
    const proto = taps.length ? withTaps(model.proto, taps) : model.proto;
    const inputs = modelInputs(model.proto);
    if (inputs.length !== 1) {
      throw new RuleditError(
        'unsupported-model',
        `the model has ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ')}); ruledit needs a classifier with one image input`,
      );
    }
    const batched = withDynamicBatch(proto, inputs[0].name) ?? proto;
    const session = await openSession(batched, options.threads);
    const output = model.proto.graph!.output![0].name!;
    return new Runner(session, inputs[0].name, output, taps, model.path ?? 'the model');
  }

  async run(data: Float32Array, dims: number[]): Promise<RunResult> {
    const feeds = { [this.input]: new ort.Tensor('float32', data, dims) };
    const result = await runSession(this.session, feeds, [this.output, ...this.taps], this.where);
    const read = (name: string): Tapped => {
      const t = result[name];
      const tapped = { data: t.data as Float32Array, dims: [...t.dims] };
      checkFiniteOutput(tapped, name, this.where);
      return tapped;
    };
    return {
      logits: read(this.output),
      taps: Object.fromEntries(this.taps.map((t) => [t, read(t)])),
    };
  }

  /**
   * Images (one input's floats each) run DEFAULT_BATCH at a time, their outputs joined along the
   * batch: the same bits as one run of them all, and faster for a fresh session.
   */
  async runImages(images: Float32Array[], dims: (n: number) => number[]): Promise<RunResult> {
    const runs: RunResult[] = [];
    for (let i = 0; i < images.length; i += DEFAULT_BATCH) {
      const part = images.slice(i, i + DEFAULT_BATCH);
      const data = new Float32Array(part.reduce((a, x) => a + x.length, 0));
      part.reduce((at, x) => (data.set(x, at), at + x.length), 0);
      runs.push(await this.run(data, dims(part.length)));
    }
    return {
      logits: joinBatches(runs.map((r) => r.logits)),
      taps: Object.fromEntries(this.taps.map((t) => [t, joinBatches(runs.map((r) => r.taps[t]))])),
    };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/**
 * Images per batch where the caller does not say (and per run of `runImages`). ONNX Runtime's
 * first runs of a large batch on a new session cost several times its later ones (its memory
 * arena grows: MobileNetV2, 42 images on a fresh session 21 at a time 1.07 s, 4 at a time
 * 0.29 s, 0.20 s once warm either way), and on 2 cores 8 at a time is as fast once warm:
 * bench/predict.ts, MobileNetV2 on imagenet-sample, eval 143 img/s at 8 against 120 at 32 (ONNX
 * Runtime alone 206 and 194). Outputs are the same bits at any batch size (checked on the shared
 * models and the built-in one).
 */
export const DEFAULT_BATCH = 8;

/** Outputs of several batches joined along the batch, as one run of them all would give. */
export function joinBatches(parts: Tapped[]): Tapped {
  if (parts.length === 1) return parts[0];
  const data = new Float32Array(parts.reduce((a, p) => a + p.data.length, 0));
  parts.reduce((at, p) => (data.set(p.data, at), at + p.data.length), 0);
  return { data, dims: [parts.reduce((a, p) => a + p.dims[0], 0), ...parts[0].dims.slice(1)] };
}

/**
 * A session over a graph with several named inputs (a network's tail fed with tensors captured
 * from the full model, and a weight to try), returning its first output (`run`) or all (`runAll`).
 */
export class FeedRunner {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly outputs: string[],
    private readonly where: string,
  ) {}

  /** `where` names the graph in errors (a tail of the model, or another small graph). */
  static async create(
    proto: ModelProto,
    threads?: number,
    where = 'a tail of the model',
  ): Promise<FeedRunner> {
    return new FeedRunner(
      await openSession(proto, threads),
      proto.graph!.output!.map((o) => o.name!),
      where,
    );
  }

  async run(feeds: Record<string, Tapped>): Promise<Tapped> {
    return (await this.runAll(feeds))[this.outputs[0]];
  }

  async runAll(feeds: Record<string, Tapped>): Promise<Record<string, Tapped>> {
    const tensors = Object.fromEntries(
      Object.entries(feeds).map(([name, t]) => [name, new ort.Tensor('float32', t.data, t.dims)]),
    );
    const result = await runSession(this.session, tensors, this.outputs, this.where);
    return Object.fromEntries(
      this.outputs.map((name) => {
        const tapped = { data: result[name].data as Float32Array, dims: [...result[name].dims] };
        checkFiniteOutput(tapped, name, `${this.where} (with a changed weight)`);
        return [name, tapped];
      }),
    );
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/**
 * A run ONNX Runtime refuses (an input shape the graph cannot take, an op failing on its data)
 * is the model's or the input's problem, said in one line, not a trace.
 */
async function runSession(
  session: ort.InferenceSession,
  feeds: Record<string, ort.Tensor>,
  fetches: string[],
  where: string,
): Promise<ort.InferenceSession.ReturnType> {
  try {
    return await session.run(feeds, fetches);
  } catch (e) {
    throw new RuleditError('bad-model', `ONNX Runtime cannot run ${where}: ${ortMessage(e)}`);
  }
}

/**
 * NaN or infinity in logits, keys or values would flow on as "NaN%" predictions, a NaN loss and a
 * guard that sees no change: every command stops at the first one, naming the tensor and image.
 */
function checkFiniteOutput(t: Tapped, name: string, where: string): void {
  const { data } = t;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v - v === 0) continue; // false only for NaN and ±Infinity
    const image = Math.floor(i / (data.length / (t.dims[0] || 1)));
    throw new RuleditError(
      'non-finite',
      `${where} computes ${v} in '${name}' (image ${image + 1} of a batch of ${t.dims[0]}): its weights or its input make it overflow; it cannot be run or edited`,
    );
  }
}

/** More threads than this only cost memory (each has its own stack and arena). */
export const MAX_THREADS = availableParallelism() * 4;

async function openSession(proto: ModelProto, threads = 0): Promise<ort.InferenceSession> {
  if (!(Number.isInteger(threads) && threads >= 0 && threads <= MAX_THREADS))
    throw new RuleditError(
      'bad-option',
      `\`threads\` must be a whole number from 0 (one per core) to ${MAX_THREADS} (4 per core), got ${threads}`,
    );
  try {
    return await ort.InferenceSession.create(serializeModel(proto), {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      // Warnings about exporter quirks (initializers listed as inputs) are not the user's business,
      // and ORT's own error log would repeat, in colour, the one line ruledit prints.
      logSeverityLevel: 4,
      // Idle ORT threads otherwise spin, taking the cores that decode the next batch.
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
  } catch (e) {
    throw new RuleditError('bad-model', `ONNX Runtime cannot load the model: ${ortMessage(e)}`);
  }
}

/** ORT's message without the C++ source location it wraps around it: what failed, in one line. */
function ortMessage(e: unknown): string {
  const first = (e as Error).message.split('\n')[0];
  const told = first.match(/\[ONNXRuntimeError\] : \d+ : \w+ : (.*)$/)?.[1] ?? first;
  return told.replace(/^\S+\.(cc|h):\d+ (\S+ )?/, '');
}
