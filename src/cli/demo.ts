import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { COLOURS, colourImage, colourModel, PREPROCESS } from '../demo/colours.ts';
import { RuleditError } from '../errors.ts';
import { saveModel } from '../onnx/save.ts';
import { existsSync } from 'node:fs';
import { evalCommand } from './eval.ts';
import { inspect } from './inspect.ts';
import { positiveIntOption } from './options.ts';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'make a small classifier in code and images for it, then run inspect and eval on them',
    )
    .option('--out <dir>', 'folder to write the demo into (default: a new temporary folder)')
    .option('--images <n>', 'test images per class', positiveIntOption, 20)
    .action(async (opts: { out?: string; images: number }) => {
      const out = opts.out ? resolve(opts.out) : await mkdtemp(join(tmpdir(), 'ruledit-demo-'));
      if (opts.out && existsSync(join(out, 'model.onnx'))) {
        throw new RuleditError(
          'exists',
          `${opts.out} already holds a demo; choose another --out folder`,
        );
      }
      console.log(
        'ruledit demo: the trained built-in model (synthetic scenes) is not there yet; this demo uses\n' +
          'a colour classifier whose weights are set by hand in code, and images drawn for it.\n',
      );
      await mkdir(join(out, 'images'), { recursive: true });
      await saveModel(colourModel(), join(out, 'model.onnx'));
      await writeFile(join(out, 'preprocess.json'), JSON.stringify(PREPROCESS, null, 2) + '\n');
      await writeFile(join(out, 'labels.txt'), COLOURS.map(([n]) => n).join('\n') + '\n');
      const rows = ['file,class,name'];
      for (let c = 0; c < COLOURS.length; c++) {
        for (let i = 0; i < opts.images; i++) {
          const file = `images/${COLOURS[c][0]}-${i}.png`;
          await writeFile(join(out, file), await colourImage(c, 1000 * c + i));
          rows.push(`${file},${c},${COLOURS[c][0]}`);
        }
      }
      await writeFile(
        join(out, 'images', 'labels.csv'),
        rows.map((r) => r.replace('images/', '')).join('\n') + '\n',
      );
      console.log(
        `wrote ${out}/model.onnx, preprocess.json, labels.txt and ${rows.length - 1} images\n`,
      );
      const model = join(out, 'model.onnx');
      console.log(`$ ruledit inspect ${model}`);
      await inspect(model, {});
      console.log(`\n$ ruledit eval ${model} ${join(out, 'images')}`);
      await evalCommand(model, join(out, 'images'), { batch: 32, threads: 0, classes: 10 });
    });
}
