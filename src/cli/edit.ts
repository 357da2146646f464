import type { Command } from 'commander';
import { Option } from 'commander';
import { loadExemplar, type Replacement } from '../concepts/exemplar.ts';
import { openDataset } from '../data/dataset.ts';
import { RuleditError } from '../errors.ts';
import { edit } from '../edit/edit.ts';
import { loadModelAssets, saveWithAssets } from './assets.ts';
import { numberOption, positiveIntOption, preprocessOption, threadsOption } from './options.ts';

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function registerEdit(program: Command): void {
  program
    .command('edit')
    .description(
      "rewrite one layer so the model treats the concept's new look like the old one (METHOD.md 3-5)",
    )
    .argument('<model>', 'ONNX model file')
    .requiredOption('--image <file>', 'exemplar image (repeat for several exemplars)', collect)
    .requiredOption(
      '--mask <file>',
      'mask of the concept in the image, 255 = concept (one per --image)',
      collect,
    )
    .option('--texture <file>', 'replace the masked region by this texture')
    .option('--tile', 'tile the texture instead of stretching it over the image', false)
    .option('--fill <colour>', 'replace the masked region by a colour (name or #rrggbb)')
    .option(
      '--modified <file>',
      'a transformed copy of the image made by you (one per --image)',
      collect,
    )
    .requiredOption('--out <file>', 'where to write the edited model')
    .option(
      '--stats-data <dir>',
      'reference images for the key statistics (cached after the first run)',
    )
    .option(
      '--layer <name>',
      "block name or index, or 'auto' (the last conv with a spatial output)",
      'auto',
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
    .addOption(preprocessOption())
    .addOption(threadsOption())
    .option('--force', 'replace --out if it exists', false)
    .option('--json', 'print the report as JSON', false)
    .action(async (modelPath: string, opts) => {
      const { model, spec, labels } = await loadModelAssets(modelPath, opts, true);
      const replacements = replacementsOf(opts);
      if (opts.mask.length !== opts.image.length) {
        throw new RuleditError(
          'bad-exemplar',
          `${opts.image.length} --image but ${opts.mask.length} --mask: give one mask per image`,
        );
      }
      const exemplars = await Promise.all(
        opts.image.map((image: string, i: number) =>
          loadExemplar(image, opts.mask[i], replacements(i), spec!),
        ),
      );
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
        onProgress: (m) => process.stderr.write(`${m}\n`),
      });
      await saveWithAssets(edited, { spec, labels }, opts.out, opts.force);
      if (opts.json) console.log(JSON.stringify(report, null, 2));
      else {
        console.log(
          `edited ${report.block} (rank ${report.rank}, ${report.solver}): loss ${report.lossBefore.toFixed(4)} -> ${report.lossAfter.toFixed(4)} in ${report.seconds.toFixed(1)} s`,
        );
        console.log(`wrote ${opts.out}`);
      }
    });
}

function replacementsOf(opts: {
  texture?: string;
  tile: boolean;
  fill?: string;
  modified?: string[];
  image: string[];
}): (i: number) => Replacement {
  const given = [opts.texture, opts.fill, opts.modified].filter((x) => x !== undefined).length;
  if (given !== 1)
    throw new RuleditError('bad-exemplar', 'give exactly one of --texture, --fill or --modified');
  if (opts.texture) return () => ({ texture: opts.texture!, mode: opts.tile ? 'tile' : 'stretch' });
  if (opts.fill) return () => ({ fill: opts.fill! });
  if (opts.modified!.length !== opts.image.length) {
    throw new RuleditError(
      'bad-exemplar',
      `${opts.image.length} --image but ${opts.modified!.length} --modified: give one per image`,
    );
  }
  return (i) => ({ modified: opts.modified![i] });
}
