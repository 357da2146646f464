import { ABOUT } from './commands.js';
import type { Command } from 'commander';
import { Option } from 'commander';
import { loadClassifier, saveClassifier, type Classifier } from '../classifier.js';
import type { Exemplar } from '../concepts/exemplar.js';
import { openDataset } from '../data/dataset.js';
import { edit } from '../edit/edit.js';
import { spatialBlocks } from '../edit/layer.js';
import { METHODS } from '../edit/methods.js';
import { describeGuard } from '../edit/guard.js';
import type { RewriteOptions } from '../edit/rewrite.js';
import { RuleditError } from '../errors.js';
import { predictFiles } from '../eval/predictions.js';
import { chooseRewrite, rewriteGrid } from '../eval/select.js';
import type { OnnxModel } from '../onnx/model.js';
import { table } from './table.js';
import {
  checkEditOutput,
  exemplarCommand,
  exemplarInputs,
  loadExemplars,
  type ExemplarFlags,
} from './exemplars.js';
import { intOption, methodOption, refreshOption } from './options.js';

const say = (m: string) => process.stderr.write(`${m}\n`);
const D = METHODS.rewrite.options;

interface EditFlags extends ExemplarFlags {
  statsData?: string;
  rank: number;
  solver: 'exact' | 'published' | 'full-rank';
  steps: number;
  lr: number;
  projectEvery: number;
  unmasked: boolean;
  prePool: boolean;
  whiteningFloor: number;
  guard: boolean;
  guardData?: string;
  strength: number;
  penalty: number;
  preserve: number;
  validate?: string;
  maxDrop: number;
  refresh: boolean;
}

interface FinetuneFlags extends ExemplarFlags {
  label: number;
  scope: 'local' | 'global';
  steps: number;
  lr: number;
  optimizer: 'sgd' | 'adam';
}

export function registerEdit(program: Command): void {
  const rewriteFlag = (key: string) => methodOption('rewrite', key);
  exemplarCommand(program, 'edit', ABOUT.edit)
    .addOption(rewriteFlag('layer'))
    .option(
      '--stats-data <dir>',
      'reference images for the key statistics (cached after the first run)',
    )
    .addOption(refreshOption('the key statistics'))
    .addOption(rewriteFlag('rank'))
    .addOption(rewriteFlag('solver'))
    .addOption(rewriteFlag('steps'))
    .addOption(rewriteFlag('lr'))
    .addOption(rewriteFlag('projectEvery'))
    .option(
      '--unmasked',
      "ablation (as published): every value position counts in the objective, not only the concept; the direction stays the concept's",
      false,
    )
    .option(
      '--pre-pool',
      "when a MaxPool follows the block's activation (a VGG stage's end): take the value before it; the published edit takes it after",
      false,
    )
    .addOption(rewriteFlag('whiteningFloor'))
    .option(
      '--guard-data <dir>',
      'held-out in-distribution images for the safety guard (default: every 4th --stats-data image, kept out of the statistics)',
    )
    .addOption(rewriteFlag('maxDrop'))
    .option('--no-guard', 'apply the solved edit without the safety guard (not recommended)')
    .addOption(rewriteFlag('penalty'))
    .addOption(rewriteFlag('preserve'))
    .option(
      '--validate <dir>',
      'labelled images of the failure case: choose block x rank x strength on them, each edit under the guard',
    )
    .addOption(rewriteFlag('strength'))
    .action(async (modelPath: string, opts: EditFlags) => {
      checkEditOutput(modelPath, opts);
      const classifier = await loadClassifier(modelPath, opts);
      const exemplars = await loadExemplars(opts, classifier.spec);
      if (exemplars.length > 1)
        say(`${exemplars.length} exemplars (images x style images x variants)`);
      const statsData = opts.statsData ? (await openDataset(opts.statsData)).items : undefined;
      const guardData = opts.guardData ? (await openDataset(opts.guardData)).items : undefined;
      const base = {
        statsData,
        useMask: !opts.unmasked,
        pool: !opts.prePool,
        solver: opts.solver,
        steps: opts.steps,
        lr: opts.lr,
        projectEvery: opts.projectEvery,
        whiteningFloor: opts.whiteningFloor,
        guard: opts.guard ? { data: guardData, maxDrop: opts.maxDrop } : (false as const),
        preserve: opts.preserve,
        refresh: opts.refresh,
        threads: opts.threads,
        onProgress: say,
      };
      const save = (model: OnnxModel) => saveEdited(classifier, model, opts);
      if (opts.validate) {
        const chosen = await validatedEdit(classifier, exemplars, base, opts);
        await save(chosen.model);
        if (opts.json) return console.log(JSON.stringify(chosen, null, 2));
        console.log(describeGuard(chosen.report.guard!));
        console.log(`wrote ${opts.out}`);
        return;
      }
      const { model: edited, report } = await edit(classifier, exemplars, {
        ...base,
        layer: opts.layer,
        rank: opts.rank,
        strength: opts.strength,
        penalty: opts.penalty,
      });
      await save(edited);
      if (opts.json) return console.log(JSON.stringify(report, null, 2));
      console.log(
        `edited ${report.block}: loss ${report.lossBefore.toFixed(4)} -> ${report.lossAfter.toFixed(4)} in ${report.seconds.toFixed(1)} s`,
      );
      console.log(
        report.guard
          ? describeGuard(report.guard)
          : 'guard: off (--no-guard): nothing measured the edit on held-out images',
      );
      console.log(`wrote ${opts.out}`);
    });

  registerRetrain(program);
  const finetuneFlag = (key: string) => methodOption('finetune-local', key);
  exemplarCommand(program, 'finetune', ABOUT.finetune)
    .addOption(finetuneFlag('layer'))
    .requiredOption('--label <n>', 'class the transformed exemplars should be called', intOption)
    .addOption(
      new Option(
        '--scope <scope>',
        "local: the block's weight only; global: every parameter from the block to the logits",
      )
        .choices(['local', 'global'])
        .default('local'),
    )
    .addOption(finetuneFlag('steps'))
    .addOption(finetuneFlag('lr'))
    .addOption(finetuneFlag('optimizer'))
    .action(async (modelPath: string, opts: FinetuneFlags) => {
      checkEditOutput(modelPath, opts);
      const classifier = await loadClassifier(modelPath, opts);
      const exemplars = await loadExemplars(opts, classifier.spec);
      const { model: edited, report } = await edit(classifier, exemplars, {
        method: opts.scope === 'local' ? 'finetune-local' : 'finetune-global',
        label: opts.label,
        layer: opts.layer,
        steps: opts.steps,
        lr: opts.lr,
        optimizer: opts.optimizer,
        threads: opts.threads,
        onProgress: say,
      });
      await saveEdited(classifier, edited, opts);
      if (opts.json) return console.log(JSON.stringify(report, null, 2));
      console.log(
        `fine-tuned ${report.tensors} tensors from ${report.block} (${report.scope}) toward class ${report.label}: cross-entropy ${report.lossBefore.toFixed(4)} -> ${report.lossAfter.toFixed(4)} in ${report.seconds.toFixed(1)} s`,
      );
      console.log(`wrote ${opts.out}`);
    });
}

/** Write the edited model to --out (its spec and labels embedded), never over an input. */
const saveEdited = (classifier: Classifier, model: OnnxModel, opts: ExemplarFlags) =>
  saveClassifier({ ...classifier, model }, opts.out, {
    force: opts.force,
    protect: exemplarInputs(opts),
  });

interface RetrainFlags extends ExemplarFlags {
  label: number;
  statsData: string;
  guard: boolean;
  guardData?: string;
  maxDrop: number;
  steps: number;
  lr: number;
  references: number;
}

function registerRetrain(program: Command): void {
  const flag = (key: string) => methodOption('retrain-last', key);
  exemplarCommand(program, 'retrain', ABOUT.retrain)
    .requiredOption('--label <n>', 'class the transformed exemplars should be called', intOption)
    .requiredOption(
      '--stats-data <dir>',
      "reference images: every 4th is held out for the safety guard, the others keep the model's own top-1",
    )
    .option('--guard-data <dir>', 'held-out in-distribution images for the safety guard')
    .addOption(flag('maxDrop'))
    .option('--no-guard', 'apply the retrained layer without the safety guard (not recommended)')
    .addOption(flag('steps'))
    .addOption(flag('lr'))
    .addOption(flag('references'))
    .action(async (modelPath: string, opts: RetrainFlags) => {
      checkEditOutput(modelPath, opts);
      const classifier = await loadClassifier(modelPath, opts);
      const exemplars = await loadExemplars(opts, classifier.spec);
      const guardData = opts.guardData ? (await openDataset(opts.guardData)).items : undefined;
      const { model: edited, report } = await edit(classifier, exemplars, {
        method: 'retrain-last',
        label: opts.label,
        statsData: (await openDataset(opts.statsData)).items,
        guard: opts.guard ? { data: guardData, maxDrop: opts.maxDrop } : false,
        steps: opts.steps,
        lr: opts.lr,
        references: opts.references,
        threads: opts.threads,
        onProgress: say,
      });
      await saveEdited(classifier, edited, opts);
      if (opts.json) return console.log(JSON.stringify(report, null, 2));
      console.log(
        `retrained ${report.block} toward class ${report.label} with ${report.references} reference images: loss ${report.lossBefore.toFixed(4)} -> ${report.lossAfter.toFixed(4)} in ${report.seconds.toFixed(1)} s`,
      );
      console.log(report.guard ? describeGuard(report.guard) : 'guard: off (--no-guard)');
      console.log(`wrote ${opts.out}`);
    });
}

/** Candidates around `auto` (or the given block) on labelled images of the failure case. */
async function validatedEdit(
  classifier: Classifier,
  exemplars: Exemplar[],
  base: Omit<RewriteOptions, 'spec' | 'layer' | 'rank' | 'penalty' | 'strength'>,
  opts: EditFlags,
) {
  const { model, spec } = classifier;
  if (base.guard === false)
    throw new RuleditError('bad-option', '--validate chooses under the guard: drop --no-guard');
  const validation = (await openDataset(opts.validate!)).items;
  if (!validation.length || validation.some((i) => i.label === undefined))
    throw new RuleditError(
      'bad-dataset',
      `--validate ${opts.validate}: a labelled data set (labels.csv or class folders) is needed`,
    );
  const layers =
    !opts.layer || opts.layer === 'auto'
      ? (await spatialBlocks(model, spec, VALIDATE_BLOCKS)).map((b) => b.name)
      : [opts.layer];
  const settings = rewriteGrid(model, {
    layers,
    ranks: opts.rank === D.rank.default ? [1, 2, 4] : [opts.rank],
    penalties: [opts.penalty],
    strengths: opts.strength === D.strength.default ? [1, 0.5] : [opts.strength],
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
    { ...base, spec },
    settings,
    async (edited, report) => ({
      score: accuracy(await predictFiles(edited, files, spec, { threads: opts.threads })),
      // The guard's estimate: the one figure its budget is on (calibrated on labelled guard images).
      cleanDrop: report.guard?.estimatedDrop ?? 0,
    }),
    opts.maxDrop,
  );
  console.log(
    table(
      ['block', 'rank', 'strength', 'kept', 'guard flips %', 'est. clean drop', 'validation top-1'],
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
      `no setting fits the guard's budget (estimated clean drop ${opts.maxDrop} points): nothing was written`,
    );
  const r = chosen.row;
  console.log(
    `chosen: ${r.layer} rank ${r.rank} strength ${r.kept!.toFixed(3)}: validation top-1 ${before.toFixed(1)} -> ${r.score.toFixed(1)}%`,
  );
  return { ...chosen, rows, validationBefore: before };
}

/** How many of the deepest spatial blocks --validate tries when the layer is auto. */
const VALIDATE_BLOCKS = 3;
