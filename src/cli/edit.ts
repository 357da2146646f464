import type { Command } from 'commander';
import { Option } from 'commander';
import { openDataset } from '../data/dataset.ts';
import { edit } from '../edit/edit.ts';
import { finetune } from '../edit/finetune.ts';
import { DEFAULT_MAX_FLIPS } from '../edit/guard.ts';
import type { Exemplar } from '../concepts/exemplar.ts';
import type { PreprocessSpec } from '../data/preprocess.ts';
import { spatialBlocks } from '../edit/layer.ts';
import {
  DEFAULT_PENALTY,
  DEFAULT_PRESERVE,
  describeGuard,
  type RewriteOptions,
  type RewriteReport,
} from '../edit/rewrite.ts';
import { RuleditError } from '../errors.ts';
import { predictFiles } from '../eval/predictions.ts';
import { chooseRewrite, rewriteGrid } from '../eval/select.ts';
import type { OnnxModel } from '../onnx/model.ts';
import { table } from './table.ts';
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
  guard: boolean;
  guardData?: string;
  maxFlips: number;
  strength: number;
  penalty: number;
  preserve: number;
  validate?: string;
  maxDrop: number;
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
    .option(
      '--guard-data <dir>',
      'held-out in-distribution images for the safety guard (default: every 4th --stats-data image, kept out of the statistics)',
    )
    .option(
      '--max-flips <percent>',
      'safety guard: largest share of guard images whose top-1 the edit may change; a stronger edit is scaled back until it fits',
      numberOption,
      DEFAULT_MAX_FLIPS,
    )
    .option('--no-guard', 'apply the solved edit without the safety guard (not recommended)')
    .option(
      '--penalty <p>',
      "exact solver: L1 penalty on the coefficients, relative to each one's steepest descent",
      numberOption,
      DEFAULT_PENALTY,
    )
    .option(
      '--preserve <w>',
      "exact solver: weight of reference images' own values in the objective, relative to the exemplars (0: the published objective)",
      numberOption,
      DEFAULT_PRESERVE,
    )
    .option(
      '--validate <dir>',
      'labelled images of the failure case: choose block x rank x strength on them, each edit under the guard',
    )
    .option(
      '--max-drop <points>',
      'with --validate and labelled guard images: largest top-1 drop on the guard images a setting may cost',
      numberOption,
      0.25,
    )
    .option(
      '--strength <s>',
      'fraction of the solved change to apply, in (0, 1] (the guard may keep less)',
      numberOption,
      1,
    )
    .action(async (modelPath: string, opts: EditFlags) => {
      const { model, spec, labels } = await loadModelAssets(modelPath, opts, true);
      const exemplars = await loadExemplars(opts, spec!);
      if (exemplars.length > 1)
        say(`${exemplars.length} exemplars (images x style images x variants)`);
      const statsData = opts.statsData ? (await openDataset(opts.statsData)).items : undefined;
      const guardData = opts.guardData ? (await openDataset(opts.guardData)).items : undefined;
      const base = {
        spec: spec!,
        statsData,
        useMask: !opts.unmasked,
        solver: opts.solver,
        steps: opts.steps,
        lr: opts.lr,
        projectEvery: opts.projectEvery,
        whiteningFloor: opts.whiteningFloor,
        guard: opts.guard ? { data: guardData, maxFlips: opts.maxFlips } : (false as const),
        preserve: opts.preserve,
        threads: opts.threads,
        onProgress: say,
      };
      if (opts.validate) {
        const chosen = await validatedEdit(model, exemplars, base, opts, spec!);
        await saveWithAssets(chosen.model, { spec, labels }, opts.out, opts.force);
        if (opts.json) return console.log(JSON.stringify(chosen, null, 2));
        console.log(describeGuard(chosen.report.guard!));
        console.log(`wrote ${opts.out}`);
        return;
      }
      const { model: edited, report } = await edit(model, exemplars, {
        ...base,
        layer: opts.layer,
        rank: opts.rank,
        strength: opts.strength,
        penalty: opts.penalty,
      });
      await saveWithAssets(edited, { spec, labels }, opts.out, opts.force);
      if (opts.json) return console.log(JSON.stringify(report, null, 2));
      const r = report as RewriteReport;
      console.log(
        `edited ${r.block}: loss ${r.lossBefore.toFixed(4)} -> ${r.lossAfter.toFixed(4)} in ${r.seconds.toFixed(1)} s`,
      );
      console.log(
        r.guard
          ? describeGuard(r.guard)
          : 'guard: off (--no-guard): nothing measured the edit on held-out images',
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

/** Candidates around `auto` (or the given block) on labelled images of the failure case. */
async function validatedEdit(
  model: OnnxModel,
  exemplars: Exemplar[],
  base: Omit<RewriteOptions, 'layer' | 'rank' | 'penalty' | 'strength'>,
  opts: EditFlags,
  spec: PreprocessSpec,
) {
  if (base.guard === false)
    throw new RuleditError('bad-option', '--validate chooses under the guard: drop --no-guard');
  const validation = (await openDataset(opts.validate!)).items;
  if (!validation.length || validation.some((i) => i.label === undefined))
    throw new RuleditError(
      'bad-dataset',
      `--validate ${opts.validate}: a labelled data set (labels.csv or class folders) is needed`,
    );
  const layers =
    opts.layer === 'auto'
      ? (await spatialBlocks(model, spec, VALIDATE_BLOCKS)).map((b) => b.name)
      : [opts.layer];
  const settings = rewriteGrid(model, {
    layers,
    ranks: opts.rank === 1 ? [1, 2, 4] : [opts.rank],
    penalties: [opts.penalty],
    strengths: opts.strength === 1 ? [1, 0.5] : [opts.strength],
  });
  const files = validation.map((i) => i.file);
  const accuracy = (p: Int32Array) =>
    (100 * validation.filter((item, i) => p[i] === item.label).length) / validation.length;
  const before = accuracy(await predictFiles(model, files, spec, { threads: opts.threads }));
  say(
    `validation: ${validation.length} images, top-1 ${before.toFixed(1)}% before; ${settings.length} settings`,
  );
  const { rows, chosen } = await chooseRewrite(
    model,
    exemplars,
    base,
    settings,
    async (edited, report) => ({
      score: accuracy(await predictFiles(edited, files, spec, { threads: opts.threads })),
      // Labelled guard images give a clean drop; unlabelled ones bound the change by flips only.
      cleanDrop:
        report.guard?.accuracyBefore !== undefined
          ? report.guard.accuracyBefore - report.guard.accuracy!
          : 0,
    }),
    opts.maxDrop,
  );
  console.log(
    table(
      ['block', 'rank', 'strength', 'kept', 'guard flips %', 'clean drop', 'validation top-1'],
      rows.map((r) => [
        r.layer,
        String(r.rank),
        String(r.strength),
        r.kept?.toFixed(3) ?? '-',
        r.flipRate?.toFixed(2) ?? 'rejected',
        Number.isNaN(r.cleanDrop) ? '-' : r.cleanDrop.toFixed(2),
        Number.isNaN(r.score) ? '-' : r.score.toFixed(1),
      ]),
    ),
  );
  if (!chosen)
    throw new RuleditError(
      'no-setting',
      `no setting fits the budgets (guard ${opts.maxFlips}% flips, clean drop ${opts.maxDrop} points): nothing was written`,
    );
  const r = chosen.row;
  console.log(
    `chosen: ${r.layer} rank ${r.rank} strength ${r.kept!.toFixed(3)}: validation top-1 ${before.toFixed(1)} -> ${r.score.toFixed(1)}%`,
  );
  return { ...chosen, rows, validationBefore: before };
}

/** How many of the deepest spatial blocks --validate tries when the layer is auto. */
const VALIDATE_BLOCKS = 3;
