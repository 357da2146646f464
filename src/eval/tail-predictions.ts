import { findBlock, listBlocks } from '../onnx/blocks.js';
import type { OnnxModel } from '../onnx/model.js';
import { DataType, type ModelProto, type TensorProto } from '../onnx/proto.js';
import { dimsOf, tensorToFloat32 } from '../onnx/tensor.js';
import type { Traces } from '../runtime/block-trace.js';
import { top1Rows } from '../runtime/logits.js';

/**
 * Top-1 predictions of edited models that differ from one original model only in weights read
 * after the edited block (a rewrite, local or global fine-tuning, last-layer retraining): each
 * image's tail inputs are read once from the original model through its traces, and an edited
 * model then runs only its tail with the changed weights as inputs: no edited model is
 * serialized, no image decoded again. Anything else (another graph, a change before the block)
 * gets `undefined`, and the caller runs the whole model.
 */
export class TailPredictions {
  private readonly signature: string;
  private readonly weights: Map<string, TensorProto>;

  constructor(
    private readonly traces: Traces,
    /** Told the original model's top-1 of each image it reads (a run it need not repeat). */
    private readonly onOriginal?: (file: string, cls: number) => void,
  ) {
    this.signature = graphSignature(traces.model.proto);
    this.weights = new Map((traces.model.proto.graph!.initializer ?? []).map((t) => [t.name!, t]));
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
    const trace = this.traces.block(
      findBlock(listBlocks(this.traces.model.proto.graph!), blockName),
    );
    const { images } = await trace.readTail(files);
    if (this.onOriginal)
      images.forEach((image, i) =>
        this.onOriginal!(
          files[i],
          top1Rows({ data: image.logits, dims: [1, image.logits.length] })[0],
        ),
      );
    const logits = await trace.runTail(
      files,
      Object.fromEntries(
        changed.map((t) => [t.name!, { data: tensorToFloat32(t), dims: dimsOf(t) }]),
      ),
    );
    return logits && Int32Array.from(logits.flatMap((l) => [...top1Rows(l)]));
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
