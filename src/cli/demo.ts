import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { loadExemplar } from '../concepts/exemplar.ts';
import { openDataset } from '../data/dataset.ts';
import {
  COLOURS,
  colourImage,
  colourModel,
  PREPROCESS,
  redSquareExemplar,
} from '../demo/colours.ts';
import { edit } from '../edit/edit.ts';
import { evaluate } from '../eval/evaluate.ts';
import { RuleditError } from '../errors.ts';
import { saveModel } from '../onnx/save.ts';
import { existsSync } from 'node:fs';
import { loadModelAssets, saveWithAssets } from './assets.ts';
import { evalCommand } from './eval.ts';
import { inspect } from './inspect.ts';
import { positiveIntOption } from './options.ts';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'make a small classifier in code and images for it, inspect and evaluate it, rewrite one of its rules, and evaluate again',
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

      // The method itself: one exemplar (a red square, its mask, the square painted blue) and
      // the model now reads every blue patch as it read red, with no label and no training.
      const { image, mask } = await redSquareExemplar();
      await writeFile(join(out, 'red-square.png'), image);
      await writeFile(join(out, 'red-square-mask.png'), mask);
      const edited = join(out, 'edited.onnx');
      const args = [
        'edit',
        model,
        '--image',
        join(out, 'red-square.png'),
        '--mask',
        join(out, 'red-square-mask.png'),
        '--fill',
        'blue',
        '--stats-data',
        join(out, 'images'),
        '--out',
        edited,
      ];
      console.log(`\n$ ruledit ${args.join(' ')}`);
      const assets = await loadModelAssets(model, {}, true);
      const exemplar = await loadExemplar(
        join(out, 'red-square.png'),
        join(out, 'red-square-mask.png'),
        { fill: 'blue' },
        assets.spec!,
      );
      const result = await edit(assets.model, [exemplar], {
        spec: assets.spec!,
        statsData: (await openDataset(join(out, 'images'))).items,
        onProgress: (m) => console.log(m),
      });
      await saveWithAssets(result.model, assets, edited, false);
      // The summary is computed, not written in advance: what moved, and what stayed.
      const data = await openDataset(join(out, 'images'));
      const [before, after] = await Promise.all([
        evaluate(assets.model, data, assets.spec!),
        evaluate(result.model, data, assets.spec!),
      ]);
      console.log('\nper class, before -> after the edit:');
      before.perClass.forEach((c, i) => {
        const a = after.perClass[i];
        const moved = after.confusions
          .filter((x) => x.class === c.class)
          .map((x) => `${x.count} now called ${x.predictedName}`);
        console.log(
          `  ${(c.name ?? String(c.class)).padEnd(8)} ${c.top1.toFixed(1)}% -> ${a.top1.toFixed(1)}%${moved.length ? ` (${moved.join(', ')})` : ''}`,
        );
      });
      console.log(
        'One exemplar (a red square painted blue) rewrote the rule, with no label and no training. Undo it with',
      );
      console.log(`$ ruledit revert ${edited} --out ${join(out, 'reverted.onnx')}`);
    });
}
