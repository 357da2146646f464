import type { Command } from 'commander';
import { ABOUT } from './commands.js';
import { activeEdits, revertLast, stripHistory } from '../edit/record.js';
import { loadModel } from '../onnx/model.js';
import { readHistory } from '../onnx/history.js';
import { saveModel } from '../onnx/save.js';
import { table } from './table.js';

export function registerHistory(program: Command): void {
  program
    .command('history')
    .description(ABOUT.history)
    .argument('<model>', 'ONNX model file')
    .option('--json', 'print the full records as JSON', false)
    .action(async (modelPath: string, opts: { json: boolean }) => {
      const history = readHistory(await loadModel(modelPath));
      if (opts.json) return console.log(JSON.stringify(history, null, 2));
      if (!history.length) return console.log('no edits recorded');
      const active = new Set(activeEdits(history));
      const loss = (r: Record<string, unknown>) => {
        const l = r.loss as { before: number; after: number } | undefined;
        return l ? `${l.before.toFixed(4)} -> ${l.after.toFixed(4)}` : '';
      };
      console.log(
        table(
          ['#', 'method', 'block', 'rank', 'loss', 'time', 'state'],
          history.map((r, i) => [
            String(i),
            r.method,
            String(r.block ?? ''),
            String(r.rank ?? ''),
            loss(r),
            r.time,
            r.method === 'revert'
              ? `undoes #${r.reverts}`
              : r.method === 'strip'
                ? 'undo data dropped'
                : active.has(i)
                  ? 'in force'
                  : 'reverted',
          ]),
        ),
      );
    });

  program
    .command('strip')
    .description(ABOUT.strip)
    .argument('<model>', 'ONNX model file')
    .requiredOption('--out <file>', 'where to write the stripped model')
    .option('--force', 'replace --out if it exists', false)
    .action(async (modelPath: string, opts: { out: string; force: boolean }) => {
      const { model, bytes } = stripHistory(await loadModel(modelPath));
      await saveModel(model, opts.out, { force: opts.force });
      console.log(`dropped ${(bytes / 2 ** 20).toFixed(2)} MB of undo data; wrote ${opts.out}`);
    });

  program
    .command('revert')
    .description(ABOUT.revert)
    .argument('<model>', 'ONNX model file')
    .requiredOption('--out <file>', 'where to write the reverted model')
    .option('--force', 'replace --out if it exists', false)
    .action(async (modelPath: string, opts: { out: string; force: boolean }) => {
      const { model, index, reverted } = revertLast(await loadModel(modelPath));
      await saveModel(model, opts.out, { force: opts.force });
      console.log(
        `reverted edit #${index} (${reverted.method} of ${reverted.block}); wrote ${opts.out}`,
      );
    });
}
