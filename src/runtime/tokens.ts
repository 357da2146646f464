import { RuleditError } from '../errors.js';
import type { Tapped } from './session.js';

/**
 * How T tokens lie on the image, as a vision transformer or CLIP's attention pooling lays them:
 * a side x side grid of patches (row-major), after one class token when T = side^2 + 1.
 */
function tokenGrid(tokens: number): { side: number; leading: number } {
  for (const leading of [0, 1]) {
    const side = Math.round(Math.sqrt(tokens - leading));
    if (side >= 1 && side * side === tokens - leading) return { side, leading };
  }
  throw new RuleditError(
    'bad-tokens',
    `${tokens} tokens are neither a square grid of patches nor one after a class token: ruledit cannot place them on the image`,
  );
}

/**
 * A tapped tensor channel-major per image, as the edit reads keys and values: [N, C, H, W] and
 * [N, C] as they are; tokens [N, T, C] as [N, C, side, side] maps of their patch tokens (a class
 * token has no place on the image and is left out: no mask can select it).
 */
export function channelMajor(t: Tapped): Tapped {
  if (t.dims.length !== 3) return t;
  const [n, tokens, channels] = t.dims;
  const { side, leading } = tokenGrid(tokens);
  const patches = side * side;
  const data = new Float32Array(n * channels * patches);
  for (let i = 0; i < n; i++)
    for (let p = 0; p < patches; p++) {
      const from = (i * tokens + leading + p) * channels;
      for (let c = 0; c < channels; c++) data[(i * channels + c) * patches + p] = t.data[from + c];
    }
  return { data, dims: [n, channels, side, side] };
}
