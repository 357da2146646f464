import type { Command } from 'commander';
import { Option } from 'commander';
import { openDataset } from '../data/dataset.ts';
import { edit } from '../edit/edit.ts';
import { finetune } from '../edit/finetune.ts';
import { loadModelAssets, saveWithAssets } from './assets.ts';
import { exemplarCommand, loadExemplars, type ExemplarFlags } from './exemplars.ts';
import { intOption, numberOption, positiveIntOption } from './options.ts';

const say = (m: string) => process.stderr.write(`${m}\n`);

interface EditFlags extends ExemplarFlags {
  statsData?: string;
  rank: number;
  solver: 'exact' | 'published' | 'full-rank';
  steps: number;
  lr: number;
  projectEvery: number;
  unmasked: boolean;
  whiteningFloor: number;
}

interface FinetuneFlags extends ExemplarFlags {
  label: number;
  scope: 'local' | 'global';
  steps: number;
  lr: number;
  optimizer: 'sgd' | 'adam';
}

export function registerEdit(program: Command): void {
  exemplarCommand(
    program,
    'edit',
    "rewrite one layer so the model treats the concept's new look like the old one (METHOD.md 3-5)",
  )
    .option(
      '--stats-data <dir>',
      'reference images for the key statistics (cached after the first run)',
    )
    .option('--rank <r>', 'rank of the edit (directions in key space)', positiveIntOption, 1)
    .addOption(
      new Option(
        '--solver <name>',
        'exact: our subspace solver; published: Adam + projection every --project-every steps; full-rank: unrestricted (ablation)',
      )
        .choices(['exact', 'published', 'full-rank'])
        .default('exact'),
    )
    .option('--steps <n>', 'Adam steps (published / full-rank solvers)', positiveIntOption, 20000)
    .option('--lr <a>', 'Adam learning rate (published / full-rank solvers)', numberOption, 1e-4)
    .option(
      '--project-every <n>',
      'projection period of the published schedule',
      positiveIntOption,
      10,
    )
    .option(
      '--unmasked',
      'ablation: every position counts in the objective and direction, not only the concept',
      false,
    )
    .option(
      '--whitening-floor <f>',
      'eigenvalues of C below f x the largest are raised to it',
      numberOption,
      1e-6,
    )
    .action(async (modelPath: string, opts: EditFlags) => {
      const { model, spec, labels } = await loadModelAssets(modelPath, opts, true);
      const exemplars = await loadExemplars(opts, spec!);
      const statsData = opts.statsData ? (await openDataset(opts.statsData)).items : undefined;
      const { model: edited, report } = await edit(model, exemplars, {
        spec: spec!,
        statsData,
        layer: opts.layer,
        rank: opts.rank,
        useMask: !opts.unmasked,
        solver: opts.solver,
        steps: opts.steps,
        lr: opts.lr,
        projectEvery: opts.projectEvery,
        whiteningFloor: opts.whiteningFloor,
        threads: opts.threads,
        onProgress: say,
      });
      await saveWithAssets(edited, { spec, labels }, opts.out, opts.force);
      if (opts.json) return console.log(JSON.stringify(report, null, 2));
      console.log(
        `edited ${report.block}: loss ${report.lossBefore.toFixed(4)} -> ${report.lossAfter.toFixed(4)} in ${report.seconds.toFixed(1)} s`,
      );
      console.log(`wrote ${opts.out}`);
    });

  exemplarCommand(
    program,
    'finetune',
    'baseline: fine-tune toward a label on the transformed exemplars (METHOD.md 6)',
  )
    .requiredOption('--label <n>', 'class the transformed exemplars should be called', intOption)
    .addOption(
      new Option(
        '--scope <scope>',
        "local: the block's weight only; global: every parameter from the block to the logits",
      )
        .choices(['local', 'global'])
        .default('local'),
    )
    .option('--steps <n>', 'optimizer steps', positiveIntOption, 400)
    .option('--lr <a>', 'learning rate', numberOption, 1e-4)
    .addOption(
      new Option('--optimizer <name>', 'optimizer').choices(['sgd', 'adam']).default('sgd'),
    )
    .action(async (modelPath: string, opts: FinetuneFlags) => {
      const { model, spec, labels } = await loadModelAssets(modelPath, opts, true);
      const exemplars = await loadExemplars(opts, spec!);
      const { model: edited, report } = await finetune(model, exemplars, {
        spec: spec!,
        label: opts.label,
        scope: opts.scope,
        layer: opts.layer,
        steps: opts.steps,
        lr: opts.lr,
        optimizer: opts.optimizer,
        threads: opts.threads,
        onProgress: say,
      });
      await saveWithAssets(edited, { spec, labels }, opts.out, opts.force);
      if (opts.json) return console.log(JSON.stringify(report, null, 2));
      console.log(
        `fine-tuned ${report.tensors} tensors from ${report.block} (${report.scope}) toward class ${report.label}: cross-entropy ${report.lossBefore.toFixed(4)} -> ${report.lossAfter.toFixed(4)} in ${report.seconds.toFixed(1)} s`,
      );
      console.log(`wrote ${opts.out}`);
    });
}
