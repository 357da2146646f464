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
    return new Runner(session, inputs[0].name, model.proto.graph!.output![0].name!, taps);
  }

  async run(data: Float32Array, dims: number[]): Promise<RunResult> {
    const feeds = { [this.input]: new ort.Tensor('float32', data, dims) };
    const result = await this.session.run(feeds, [this.output, ...this.taps]);
    const read = (name: string): Tapped => {
      const t = result[name];
      return { data: t.data as Float32Array, dims: [...t.dims] };
    };
    return {
      logits: read(this.output),
      taps: Object.fromEntries(this.taps.map((t) => [t, read(t)])),
    };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/**
 * A session over a graph with several named inputs (a network's tail fed with tensors captured
 * from the full model, and a weight to try), returning its first output.
 */
export class FeedRunner {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly output: string,
  ) {}

  static async create(proto: ModelProto, threads?: number): Promise<FeedRunner> {
    return new FeedRunner(await openSession(proto, threads), proto.graph!.output![0].name!);
  }

  async run(feeds: Record<string, Tapped>): Promise<Tapped> {
    const tensors = Object.fromEntries(
      Object.entries(feeds).map(([name, t]) => [name, new ort.Tensor('float32', t.data, t.dims)]),
    );
    const out = (await this.session.run(tensors, [this.output]))[this.output];
    return { data: out.data as Float32Array, dims: [...out.dims] };
  }

  async release(): Promise<void> {
    await this.session.release();
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
      // Warnings about exporter quirks (initializers listed as inputs) are not the user's business.
      logSeverityLevel: 3,
      // Idle ORT threads otherwise spin, taking the cores that decode the next batch.
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
  } catch (e) {
    throw new RuleditError(
      'bad-model',
      `ONNX Runtime cannot load the model: ${(e as Error).message.split('\n')[0]}`,
    );
  }
}
