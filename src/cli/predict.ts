import { resolve } from 'node:path';
import type { Command } from 'commander';
import { ABOUT } from './commands.js';
import { batches } from '../data/batches.js';
import { DEFAULT_BATCH } from '../runtime/session.js';
import { shortLabel } from '../data/labels.js';
import { softmax, topK } from '../runtime/logits.js';
import { capture } from '../runtime/capture.js';
import { loadClassifier } from '../classifier.js';
import { labelsOption, positiveIntOption, preprocessOption, threadsOption } from './options.js';

export function registerPredict(program: Command): void {
  program
    .command('predict')
    .description(ABOUT.predict)
    .argument('<model>', 'ONNX model file')
    .argument('<images...>', 'image files (JPEG, PNG, WebP)')
    .addOption(preprocessOption())
    .addOption(labelsOption())
    .option('--top <k>', 'classes to show per image', positiveIntOption, 5)
    .option('--batch <n>', 'images per batch', positiveIntOption, DEFAULT_BATCH)
    .addOption(threadsOption())
    .option('--json', 'print predictions as JSON', false)
    .action(async (modelPath: string, images: string[], opts) => {
      const { model, spec, labels } = await loadClassifier(modelPath, opts);
      const items = images.map((file) => ({ file: resolve(file) }));
      const results: {
        file: string;
        top: { class: number; name?: string; probability: number }[];
      }[] = [];
      const stream = batches(items, spec, { batchSize: opts.batch });
      for await (const out of capture(model, [], stream, { threads: opts.threads })) {
        const classes = out.logits.dims[out.logits.dims.length - 1];
        out.items.forEach((item, row) => {
          const probs = softmax(out.logits.data.subarray(row * classes, (row + 1) * classes));
          const top = topK(probs, Math.min(opts.top, classes)).map((c) => ({
            class: c,
            name: labels?.[c],
            probability: probs[c],
          }));
          results.push({ file: item.file, top });
          if (!opts.json) {
            console.log(item.file);
            for (const t of top) {
              const label = t.name ? `  ${shortLabel(t.name)}` : '';
              console.log(
                `  ${(100 * t.probability).toFixed(2).padStart(6)}%  ${String(t.class).padStart(4)}${label}`,
              );
            }
          }
        });
      }
      if (opts.json) console.log(JSON.stringify(results, null, 2));
    });
}
