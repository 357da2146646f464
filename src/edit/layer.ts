import type { Block } from '../onnx/blocks.js';
import { findBlock, listBlocks } from '../onnx/blocks.js';
import { batchDims, type PreprocessSpec } from '../data/preprocess.js';
import type { OnnxModel } from '../onnx/model.js';
import { tensorShapes } from '../runtime/capture.js';
import { RuleditError } from '../errors.js';

/**
 * `--layer auto`: the last editable convolution whose output is still a spatial map (more than
 * 1x1), i.e. the deepest layer where a concept still has a place in the image. On the shared
 * MobileNetV2 that is the 320 -> 1280 block (7x7) before global pooling; see the note in
 * README ("Choosing the layer") for the measurements behind it.
 */
export function autoLayer(blocks: Block[], valueSpatial: (b: Block) => number[]): Block {
  const last = spatialConvs(blocks, valueSpatial).at(-1);
  if (!last)
    throw new RuleditError(
      'no-block',
      'no editable convolution with a spatial output; give `layer` (a block name)',
    );
  return last;
}

/** Editable convolutions whose output is a spatial map (more than 1x1), in graph order. */
function spatialConvs(blocks: Block[], valueSpatial: (b: Block) => number[]): Block[] {
  return blocks.filter(
    (b) => b.editable && b.op === 'Conv' && valueSpatial(b).reduce((a, x) => a * x, 1) > 1,
  );
}

/** Every block, and the spatial size of each block's value for one image. */
async function blocksWithSpatial(model: OnnxModel, spec: PreprocessSpec) {
  const blocks = listBlocks(model.proto.graph!);
  const shapes = await tensorShapes(
    model,
    blocks.map((b) => b.value),
    batchDims(spec, 1),
  );
  return { blocks, valueSpatial: (b: Block) => shapes[b.value].slice(2) };
}

/** The deepest `n` editable convolutions with a spatial output, deepest last: `auto` and its neighbours. */
export async function spatialBlocks(
  model: OnnxModel,
  spec: PreprocessSpec,
  n: number,
): Promise<Block[]> {
  const { blocks, valueSpatial } = await blocksWithSpatial(model, spec);
  return spatialConvs(blocks, valueSpatial).slice(-n);
}

/** The block a method should edit: by name/index, or the `auto` rule (needs the value shapes). */
export async function pickBlock(
  model: OnnxModel,
  spec: PreprocessSpec,
  layer: string | undefined,
): Promise<Block> {
  if (layer && layer !== 'auto') return findBlock(listBlocks(model.proto.graph!), layer);
  const { blocks, valueSpatial } = await blocksWithSpatial(model, spec);
  return autoLayer(blocks, valueSpatial);
}
