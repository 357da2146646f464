import type { Command } from 'commander';
import { ABOUT } from './commands.js';
import { openDataset } from '../data/dataset.js';
import { keyStatistics } from '../edit/stats.js';
import { checkSetting } from '../edit/methods.js';
import { whitening } from '../edit/whiten.js';
import { findBlock, listBlocks } from '../onnx/blocks.js';
import { loadClassifier } from '../classifier.js';
import {
  methodOption,
  positiveIntOption,
  preprocessOption,
  queueOption,
  refreshOption,
  threadsOption,
} from './options.js';
import { connectQueue } from '../queue/connection.js';
import { queueStatistics } from '../queue/statistics.js';
import { progress } from './progress.js';

export function registerStats(program: Command): void {
  program
    .command('stats')
    .description(ABOUT.stats)
    .argument('<model>', 'ONNX model file')
    .requiredOption('--layer <name>', 'block name or index')
    .requiredOption('--data <dir>', 'reference images (any data set form; labels are not needed)')
    .addOption(methodOption('rewrite', 'whiteningFloor'))
    .option('--batch <n>', 'images per batch', positiveIntOption, 32)
    .addOption(threadsOption())
    .addOption(refreshOption('the statistics'))
    .addOption(queueOption())
    .addOption(preprocessOption())
    .option('--json', 'print a summary as JSON', false)
    .action(async (modelPath: string, opts) => {
      checkSetting('rewrite', { whiteningFloor: opts.whiteningFloor });
      const { model, spec } = await loadClassifier(modelPath, opts);
      const block = findBlock(listBlocks(model.proto.graph!), opts.layer);
      const data = await openDataset(opts.data);
      const t = performance.now();
      const say = (m: string) => process.stderr.write(`${m}\n`);
      const stats = opts.queue
        ? await queueStatistics(
            await connectQueue(opts.queue),
            { model, spec },
            block.name,
            data.items,
            {
              url: opts.queue,
              say,
              refresh: opts.refresh,
            },
          )
        : await local();
      async function local() {
        const bar = progress('stats', data.items.length);
        const stats = await keyStatistics(model, block, data.items, spec, {
          batchSize: opts.batch,
          threads: opts.threads,
          refresh: opts.refresh,
          onWarning: (m) => say(`warning: ${m}`),
          onBatch: (n) => bar.tick(n),
        });
        bar.done();
        return stats;
      }
      const white = whitening(stats.C, stats.dim, opts.whiteningFloor);
      const ev = white.eigenvalues;
      const summary = {
        block: block.name,
        dim: stats.dim,
        images: stats.images,
        positions: stats.count,
        largestEigenvalue: ev[0],
        smallestEigenvalue: ev[ev.length - 1],
        below1e4OfLargest: ev.filter((s) => s < 1e-4 * ev[0]).length,
        clampedAtFloor: white.clamped,
        repaired: white.repaired,
        cacheKey: stats.key,
        seconds: (performance.now() - t) / 1000,
      };
      if (opts.json) return console.log(JSON.stringify(summary, null, 2));
      console.log(
        `${block.name}: keys of dimension ${stats.dim} over ${stats.images} images (${stats.count} positions)`,
      );
      console.log(
        `eigenvalues of C: largest ${ev[0].toExponential(3)}, smallest ${ev[ev.length - 1].toExponential(3)}; ${summary.below1e4OfLargest} below 1e-4 of the largest`,
      );
      if (white.repaired)
        console.log('C was not positive definite: its non-positive eigenvalues were clamped');
      console.log(
        `${white.clamped} eigenvalues clamped at the floor ${opts.whiteningFloor} x largest (cache key ${stats.key})`,
      );
    });
}
