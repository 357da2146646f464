import type { Block } from '../onnx/blocks.ts';
import { findBlock } from '../onnx/blocks.ts';
import { RuleditError } from '../errors.ts';

/**
 * `--layer auto`: the last editable convolution whose output is still a spatial map (more than
 * 1x1), i.e. the deepest layer where a concept still has a place in the image. On the shared
 * MobileNetV2 that is the 320 -> 1280 block (7x7) before global pooling; see the note in
 * README ("Choosing the layer") for the measurements behind it.
 */
export function autoLayer(blocks: Block[], valueSpatial: (b: Block) => number[]): Block {
  const candidates = blocks.filter(
    (b) => b.editable && b.op === 'Conv' && valueSpatial(b).reduce((a, x) => a * x, 1) > 1,
  );
  const last = candidates[candidates.length - 1];
  if (!last)
    throw new RuleditError(
      'no-block',
      'no editable convolution with a spatial output; pass --layer NAME',
    );
  return last;
}

export function resolveLayer(
  blocks: Block[],
  layer: string | undefined,
  valueSpatial: (b: Block) => number[],
): Block {
  return !layer || layer === 'auto' ? autoLayer(blocks, valueSpatial) : findBlock(blocks, layer);
}
