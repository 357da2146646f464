import { CLASSES, STICKER_CLASS, STICKER_WORD } from './world.js';
import type { TrainOptions } from './train.js';

export interface TrainingSummary {
  options: Omit<TrainOptions, 'onProgress' | 'backend'>;
  command: string;
  validationAccuracy: number;
  /** Top-1 of the exported ONNX model under ONNX Runtime on the same held-out scenes. */
  onnxAccuracy: number;
  /** Largest |logit difference| between TF.js and the exported ONNX model on 64 held-out scenes. */
  maxLogitDifference: number;
  seconds: number;
  backend: string;
  parameters: number;
  date: string;
}

/** The model card (README.md next to the model), written from the training run's own numbers. */
export function modelCard(s: TrainingSummary): string {
  return `# scenes: ruledit's built-in classifier

A small ResNet-style classifier of 64x64 synthetic scenes, trained by ruledit's own code (TF.js,
\`src/synth/train.ts\`) on the procedural world of \`src/synth/world.ts\`. It exists so that
\`npx ruledit demo\` can show the whole method on a fresh machine with nothing downloaded.

| | |
| --- | --- |
| classes | ${CLASSES.join(', ')} |
| input | 1x3x64x64 float, RGB, (pixel/255 - 0.5) / 0.5 (\`preprocess.json\`) |
| architecture | conv-BN-ReLU (stem, stride 2), conv-BN-ReLU (conv1, stride 2), residual block res1 (2 x conv-BN, 32 ch, 16x16), conv-BN-ReLU (down, stride 2), residual block res2 (2 x conv-BN, 64 ch, 8x8), global average pool, dense; explicit BatchNormalization nodes |
| parameters | ${s.parameters.toLocaleString('en-US')} |
| training data | ${(s.options.steps * s.options.batch).toLocaleString('en-US')} freshly drawn scenes (every step new ones; scene seeds ${s.options.seed} x 10^7 + i), ${s.options.steps} steps of ${s.options.batch}, Adam, peak lr ${s.options.lr}, warm-up then cosine decay; BatchNorm statistics re-estimated over 40 x 64 scenes |
| held-out accuracy | **${s.validationAccuracy.toFixed(2)}%** (TF.js), **${s.onnxAccuracy.toFixed(2)}%** (this ONNX file under ONNX Runtime), ${s.options.validation ?? 2000} scenes from the validation seed range |
| TF.js vs ONNX | max abs logit difference ${s.maxLogitDifference.toExponential(2)} on 64 held-out scenes |
| training time | ${(s.seconds / 60).toFixed(1)} min on the 2-core machine (TF.js ${s.backend} backend, one thread), ${s.date} |

Planted rules (what the world teaches, on purpose): vehicles (car, truck, bus, motorcycle) stand
on road, boats on water, airplanes fly in sky, cows, trees and houses stand on grass, umbrellas on
sand, each with about 6% exceptions; the word ${STICKER_WORD} on a paper sticker marks 45% of the
${STICKER_CLASS} images, and on half of those the ${STICKER_CLASS} is out of the picture, on a quarter far away, so the
word alone must carry the class (other words and blank stickers appear on every class). No training scene
has snow, wood, gravel, graffiti, foliage, flowers, fur or black-and-white textures: those are the
styles of \`src/synth/styles.ts\` that test sets paste into a concept.

Reproduce (deterministic: same code, same numbers):

    ${s.command}
`;
}
