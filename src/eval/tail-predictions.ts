import { batches } from '../data/batches.js';
import type { PreprocessSpec } from '../data/preprocess.js';
import { findBlock, listBlocks, type Block } from '../onnx/blocks.js';
import { GraphView } from '../onnx/graph.js';
import type { OnnxModel } from '../onnx/model.js';
import { DataType, type ModelProto, type TensorProto } from '../onnx/proto.js';
import { tailModel } from '../onnx/tail-model.js';
import { dimsOf, tensorToFloat32 } from '../onnx/tensor.js';
import { top1Rows } from '../runtime/logits.js';
import { DEFAULT_BATCH, FeedRunner, Runner, type Tapped } from '../runtime/session.js';

/**
 * Top-1 predictions of edited models that differ from one original model only in weights read
 * after the edited block (a rewrite, local or global fine-tuning). The tail's inputs are captured
 * from the original model once per image and block; an edited model then runs only its tail, on
 * one ONNX Runtime session per block with the changed weights as inputs: no edited model is
 * serialized, no image decoded again. Anything else (another graph, a change before the block)
 * gets `undefined`, and the caller runs the whole model.
 */
export class TailPredictions {
  private readonly signature: string;
  private readonly weights: Map<string, TensorProto>;
  /** Captured tail inputs per block key, then per file: one image's tensors. */
  private readonly captured = new Map<string, Map<string, Float32Array[]>>();
  /** Per-image shapes of the captured tensors (without the batch dimension). */
  private readonly dims = new Map<string, number[]>();
  private readonly sessions = new Map<string, Promise<{ runner: FeedRunner; inputs: string[] }>>();
  private bytes = 0;

  constructor(
    private readonly model: OnnxModel,
    private readonly spec: PreprocessSpec,
    private readonly options: {
      threads?: number;
      batchSize?: number;
      maxBytes?: number;
      /** Told the original model's top-1 of each image it captures (a run it need not repeat). */
      onOriginal?: (file: string, cls: number) => void;
    } = {},
  ) {
    this.signature = graphSignature(model.proto);
    this.weights = new Map((model.proto.graph!.initializer ?? []).map((t) => [t.name!, t]));
  }

  async predict(
    edited: OnnxModel,
    blockName: string,
    files: string[],
  ): Promise<Int32Array | undefined> {
    if (graphSignature(edited.proto) !== this.signature) return undefined;
    const changed = (edited.proto.graph!.initializer ?? []).filter((t) => {
      const mine = this.weights.get(t.name!);
      return mine !== t && !(mine && sameValues(mine, t));
    });
    if (
      changed.some(
        (t) => (t.dataType ?? DataType.FLOAT) !== DataType.FLOAT || !this.weights.has(t.name!),
      )
    )
      return undefined;
    const block = findBlock(listBlocks(this.model.proto.graph!), blockName);
    const free = changed.map((t) => t.name!).sort();
    const session = await this.session(block, free);
    if (!session) return undefined;
    const perImage = await this.capture(block.key, session.inputs, files);
    const weights = Object.fromEntries(
      changed.map((t) => [t.name!, { data: tensorToFloat32(t), dims: dimsOf(t) }]),
    );
    const out = new Int32Array(files.length);
    const size = this.options.batchSize ?? DEFAULT_BATCH;
    for (let start = 0; start < files.length; start += size) {
      const rows = files.slice(start, start + size).map((f) => perImage.get(f)!);
      const feeds: Record<string, Tapped> = { ...weights };
      session.inputs.forEach((name, k) => {
        const one = rows[0][k];
        const data = new Float32Array(one.length * rows.length);
        rows.forEach((r, i) => data.set(r[k], i * one.length));
        feeds[name] = { data, dims: [rows.length, ...this.dims.get(name)!] };
      });
      const logits = await session.runner.run(feeds);
      top1Rows(logits).forEach((c, i) => (out[start + i] = c));
    }
    return out;
  }

  async release(): Promise<void> {
    for (const s of this.sessions.values()) await (await s)?.runner.release();
    this.sessions.clear();
    this.captured.clear();
  }

  private session(block: Block, free: string[]) {
    const id = JSON.stringify([block.key, free]);
    if (!this.sessions.has(id)) {
      // From the block's node on, as global fine-tuning trains it (a skip path's downsample too).
      const from = new GraphView(this.model.proto.graph!).producer(block.linearOutput);
      const tail = tailModel(this.model.proto, block.key, free, from);
      const inputs = new Set((tail.proto.graph!.input ?? []).map((i) => i.name));
      // A changed weight the tail does not read lies before the block: the tail cannot show it.
      if (!free.every((f) => inputs.has(f))) return undefined;
      this.sessions.set(
        id,
        FeedRunner.create(tail.proto, this.options.threads).then((runner) => ({
          runner,
          inputs: tail.inputs,
        })),
      );
    }
    return this.sessions.get(id)!;
  }

  /** The tail inputs of every file, captured from the original model for those not seen yet. */
  private async capture(key: string, taps: string[], files: string[]) {
    const known = this.captured.get(key) ?? new Map<string, Float32Array[]>();
    this.captured.set(key, known);
    const missing = [...new Set(files.filter((f) => !known.has(f)))];
    if (missing.length) {
      const runner = await Runner.create(this.model, { taps, threads: this.options.threads });
      try {
        const items = missing.map((file) => ({ file }));
        for await (const b of batches(items, this.spec, {
          batchSize: this.options.batchSize ?? DEFAULT_BATCH,
        })) {
          const out = await runner.run(b.data, b.dims);
          const original = top1Rows(out.logits);
          b.items.forEach((item, row) => {
            this.options.onOriginal?.(item.file, original[row]);
            const tensors = taps.map((t) => {
              const { data, dims } = out.taps[t];
              this.dims.set(t, dims.slice(1));
              const n = data.length / dims[0];
              return data.slice(row * n, (row + 1) * n);
            });
            this.bytes += tensors.reduce((s, t) => s + t.byteLength, 0);
            known.set(item.file, tensors);
          });
        }
      } finally {
        await runner.release();
      }
    }
    const wanted = new Map(files.map((f) => [f, known.get(f)!]));
    this.evict(new Set(files));
    return wanted;
  }

  /** Oldest captures go first once over the memory budget, never the ones in use. */
  private evict(inUse: Set<string>) {
    const max = this.options.maxBytes ?? 1 << 30;
    for (const known of this.captured.values())
      for (const [file, tensors] of known) {
        if (this.bytes <= max) return;
        if (inUse.has(file)) continue;
        known.delete(file);
        this.bytes -= tensors.reduce((s, t) => s + t.byteLength, 0);
      }
  }
}

/** Nodes, inputs and outputs: equal when two models differ at most in initializer values. */
function graphSignature(proto: ModelProto): string {
  const g = proto.graph!;
  return JSON.stringify([
    g.node?.map((n) => [n.opType, n.input, n.output]),
    g.input?.map((i) => i.name),
    g.output?.map((o) => o.name),
    (g.initializer ?? []).map((t) => t.name).sort(),
  ]);
}

function sameValues(a: TensorProto, b: TensorProto): boolean {
  if (a.rawData?.length && b.rawData?.length) return Buffer.from(a.rawData).equals(b.rawData);
  const [x, y] = [tensorToFloat32(a), tensorToFloat32(b)];
  return x.length === y.length && x.every((v, i) => Object.is(v, y[i]));
}
