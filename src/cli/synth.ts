import { ABOUT } from './commands.js';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { RuleditError } from '../errors.js';
import { gradEngine } from '../grad/engine.js';
import { writeFileAtomic } from '../io/atomic.js';
import { modelCard } from '../synth/card.js';
import { sceneModelToOnnx } from '../synth/export.js';
import { compareWithOnnx } from '../synth/agreement.js';
import { SCENE_PREPROCESS } from '../synth/builtin.js';
import { trainSceneModel } from '../synth/train.js';
import { CLASSES } from '../synth/world.js';
import { GROUNDS, type Ground } from '../synth/grounds.js';
import { STYLES } from '../synth/styles.js';
import { writeScenes, writeStyles } from '../synth/write.js';
import { progress } from './progress.js';
import { classifierOf, saveClassifier } from '../classifier.js';
import { parsePreprocess } from '../data/preprocess.js';
import { numberOption, positiveIntOption, sideOption } from './options.js';

export function registerSynth(program: Command): void {
  const synth = program.command('synth').description(ABOUT.synth);
  registerWriters(synth);
  synth
    .command('train')
    .description(
      'train the built-in scene classifier (TF.js) and export it to ONNX with a model card',
    )
    .option(
      '--out <dir>',
      'folder for model.onnx, labels.txt, preprocess.json, README.md',
      'models/scenes',
    )
    .option('--steps <n>', 'training steps', positiveIntOption, 2400)
    .option('--batch <n>', 'scenes per step', positiveIntOption, 32)
    .option('--lr <x>', 'peak Adam learning rate', numberOption, 3e-3)
    .option('--seed <n>', 'seed of the weights and of the training scenes', positiveIntOption, 1)
    .option('--force', 'replace an existing model')
    .action(
      async (opts: {
        out: string;
        steps: number;
        batch: number;
        lr: number;
        seed: number;
        force?: boolean;
      }) => {
        const out = resolve(opts.out);
        if (!opts.force && existsSync(join(out, 'model.onnx')))
          throw new RuleditError(
            'exists',
            `${opts.out}/model.onnx already exists; pass --force to replace it`,
          );
        await mkdir(out, { recursive: true });
        const options = {
          steps: opts.steps,
          batch: opts.batch,
          lr: opts.lr,
          seed: opts.seed,
          validation: 2000,
        };
        const result = await trainSceneModel({
          ...options,
          onProgress: (p) =>
            process.stderr.write(
              `step ${p.step}/${p.steps}  loss ${p.loss.toFixed(3)}  train acc ${p.accuracy.toFixed(1)}%  ` +
                `${((p.step * opts.batch) / p.seconds).toFixed(0)} img/s  ETA ${(((p.steps - p.step) * p.seconds) / p.step / 60).toFixed(1)} min\n`,
            ),
        });
        const model = sceneModelToOnnx(result.params);
        const { tf } = await gradEngine();
        const agreement = await compareWithOnnx(tf, result.params, model, options.validation);
        const spec = parsePreprocess(SCENE_PREPROCESS, 'built-in preprocessing');
        await saveClassifier(classifierOf(model, spec, [...CLASSES]), join(out, 'model.onnx'), {
          force: !!opts.force,
        });
        await writeFileAtomic(join(out, 'labels.txt'), CLASSES.join('\n') + '\n', { force: true });
        await writeFileAtomic(
          join(out, 'preprocess.json'),
          JSON.stringify(SCENE_PREPROCESS, null, 2) + '\n',
          { force: true },
        );
        const summary = {
          options,
          command: `npx ruledit synth train --out ${opts.out} --steps ${opts.steps} --batch ${opts.batch} --lr ${opts.lr} --seed ${opts.seed} --force`,
          validationAccuracy: result.validationAccuracy,
          onnxAccuracy: agreement.accuracy,
          maxLogitDifference: agreement.maxLogitDifference,
          seconds: result.seconds,
          backend: result.backend,
          parameters: parameterCount(result.params),
          date: new Date().toISOString().slice(0, 10),
        };
        await writeFileAtomic(join(out, 'training.json'), JSON.stringify(summary, null, 2) + '\n', {
          force: true,
        });
        await writeFileAtomic(join(out, 'README.md'), modelCard(summary), { force: true });
        console.log(
          `held-out accuracy ${result.validationAccuracy.toFixed(2)}% (ONNX ${agreement.accuracy.toFixed(2)}%), ` +
            `max logit difference TF.js vs ONNX ${agreement.maxLogitDifference.toExponential(2)}, ` +
            `${(result.seconds / 60).toFixed(1)} min; wrote ${opts.out}/`,
        );
      },
    );
}

function registerWriters(synth: Command): void {
  synth
    .command('scenes')
    .description(
      'write a labelled data set of scenes with a mask per concept (masks/CONCEPT/IMAGE.png)',
    )
    .requiredOption('--out <dir>', 'folder to write into')
    .option('--per-class <n>', 'scenes per class', positiveIntOption, 50)
    .option(
      '--seed <n>',
      'which set of scenes (each seed gives other scenes)',
      positiveIntOption,
      1,
    )
    .addOption(
      new Option('--ground <name>', 'put every object on this ground').choices([...GROUNDS]),
    )
    .option('--force', 'replace an existing data set')
    .action(
      async (opts: {
        out: string;
        perClass: number;
        seed: number;
        ground?: Ground;
        force?: boolean;
      }) => {
        const bar = progress('scenes', opts.perClass * CLASSES.length);
        const r = await writeScenes(resolve(opts.out), { ...opts, onImage: () => bar.tick(1) });
        bar.done();
        const masks = Object.entries(r.masks)
          .map(([c, k]) => `${c} ${k}`)
          .join(', ');
        console.log(`wrote ${r.images} scenes to ${opts.out} (images with a mask: ${masks})`);
      },
    );
  synth
    .command('styles')
    .description('write the procedural texture styles, one folder of images per style')
    .requiredOption('--out <dir>', 'folder to write into')
    .option('--size <px>', 'image side', sideOption, 128)
    .option('--force', 'replace existing images')
    .action(async (opts: { out: string; size: number; force?: boolean }) => {
      const files = await writeStyles(resolve(opts.out), opts.size, !!opts.force);
      console.log(`wrote ${files.length} style images to ${opts.out} (${STYLES.join(', ')})`);
    });
}

function parameterCount(p: {
  convs: { w: Float32Array; gamma: Float32Array; beta: Float32Array }[];
  fc: { w: Float32Array; b: Float32Array };
}): number {
  return (
    p.convs.reduce((n, c) => n + c.w.length + c.gamma.length + c.beta.length, 0) +
    p.fc.w.length +
    p.fc.b.length
  );
}
