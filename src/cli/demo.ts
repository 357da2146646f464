import { ABOUT } from './commands.js';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { DEMO_FINETUNE, runSceneDemo, type SceneDemoResult } from '../demo/scenes.js';
import { RuleditError } from '../errors.js';
import { DEFAULT_VARIANTS } from '../concepts/exemplar.js';
import { describeGuard } from '../edit/guard.js';
import type { ReportData } from '../report/types.js';
import { writeReport } from '../report/write.js';
import { BUILTIN_MODEL } from '../synth/builtin.js';
import { GROUNDS } from '../synth/grounds.js';
import { STYLES } from '../synth/styles.js';
import { CLASSES } from '../synth/world.js';
import { loadClassifier, saveClassifier } from '../classifier.js';
import { numberOption, positiveIntOption, threadsOption } from './options.js';
import { table } from './table.js';

interface DemoFlags {
  out?: string;
  images: number;
  variants: number;
  concept: (typeof GROUNDS)[number];
  style: (typeof STYLES)[number];
  class: string;
  layer?: string;
  rank?: number;
  penalty?: number;
  maxDrop: number;
  steps: number;
  lr: number;
  finetune: boolean;
  sticker: boolean;
  json?: boolean;
  threads: number;
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(ABOUT.demo)
    .option(
      '--out <dir>',
      'folder for the report and the edited model (default: a new temporary folder)',
    )
    .option('--images <n>', 'test scenes per class', positiveIntOption, 40)
    .option(
      '--variants <n>',
      "placements of the exemplar's style image (jittered), one exemplar each",
      positiveIntOption,
      DEFAULT_VARIANTS,
    )
    .addOption(
      new Option('--concept <name>', 'the concept that takes a new look')
        .choices([...GROUNDS])
        .default('road'),
    )
    .addOption(new Option('--style <name>', 'its new look').choices([...STYLES]).default('snow'))
    .addOption(
      new Option('--class <name>', "the exemplar scene's class")
        .choices([...CLASSES])
        .default('car'),
    )
    .option(
      '--layer <block>',
      'block to edit (default: chosen on validation scenes, every block tried)',
    )
    .option(
      '--rank <r>',
      'rank of the rewrite (default: chosen on validation scenes among 1, 2)',
      positiveIntOption,
    )
    .option(
      '--penalty <x>',
      'L1 penalty of the rewrite (default: chosen among 0.003, 0.1)',
      numberOption,
    )
    .option(
      '--max-drop <points>',
      'clean accuracy drop a setting may cost to be chosen',
      numberOption,
      1,
    )
    .option(
      '--steps <n>',
      'fine-tuning steps (both baselines)',
      positiveIntOption,
      DEMO_FINETUNE.steps,
    )
    .option('--lr <a>', 'fine-tuning learning rate (SGD)', numberOption, DEMO_FINETUNE.lr)
    .option('--no-finetune', 'skip the fine-tuning baselines')
    .option('--no-sticker', 'skip the sticker scenario')
    .option('--json', 'print the results as JSON on stdout')
    .addOption(threadsOption())
    .action(async (flags: DemoFlags) => {
      const out = flags.out ? resolve(flags.out) : await mkdtemp(join(tmpdir(), 'ruledit-demo-'));
      if (flags.out && existsSync(join(out, 'edited.onnx'))) {
        throw new RuleditError(
          'exists',
          `${flags.out} already holds a demo; choose another --out folder`,
        );
      }
      await mkdir(out, { recursive: true });
      if (!existsSync(BUILTIN_MODEL)) {
        throw new RuleditError(
          'no-model',
          `the built-in model ${BUILTIN_MODEL} is missing; rebuild it with 'npx ruledit synth train' (see models/scenes/README.md)`,
        );
      }
      const classifier = await loadClassifier(BUILTIN_MODEL);
      const log = (m: string) => process.stderr.write(`${m}\n`);
      if (!flags.json) {
        console.log(
          `ruledit demo: the built-in scene classifier (${BUILTIN_MODEL}), ${CLASSES.length} classes: ${CLASSES.join(', ')}\n`,
        );
      }
      const start = performance.now();
      const { result, edited } = await runSceneDemo(classifier, {
        images: flags.images,
        variants: flags.variants,
        concept: flags.concept,
        style: flags.style,
        exemplarClass: flags.class,
        layer: flags.layer,
        rank: flags.rank,
        penalty: flags.penalty,
        maxDrop: flags.maxDrop,
        steps: flags.steps,
        lr: flags.lr,
        finetune: flags.finetune,
        sticker: flags.sticker,
        threads: flags.threads,
        onProgress: flags.json ? undefined : log,
      });
      const model = join(out, 'edited.onnx');
      await saveClassifier({ ...classifier, model: edited }, model);
      const report = await writeReport(reportData(result), join(out, 'report'), { force: true });
      const seconds = (performance.now() - start) / 1000;
      if (flags.json) {
        const { pictures: _, ...plain } = result;
        console.log(JSON.stringify({ ...plain, model, report: report.html, seconds }, null, 2));
        return;
      }
      console.log('\n' + summaryText(result));
      console.log(`\nedited model (rewrite): ${model}`);
      console.log(`report: ${report.html}`);
      console.log(`(${seconds.toFixed(0)} s)`);
    });
}

// One rounding rule: accuracies and errors corrected to 0.1%, accuracy drops to 0.01 point
// (a drop moves in steps of 1/images, a quarter of a point over 400 scenes).
const pct = (v: number) => (Number.isNaN(v) ? 'n/a' : `${v.toFixed(1)}`);
const points = (v: number) => (Number.isNaN(v) ? 'n/a' : `${v.toFixed(2)}`);

function classTable(r: SceneDemoResult): { columns: string[]; rows: string[][] } {
  const methods = r.methods.map((m) => m.method);
  const columns = [
    'class',
    `on ${r.concept}`,
    `on ${r.style}`,
    ...methods.map((m) => `${r.style}: ${m}`),
  ];
  const rows = r.classes.map((c) => [
    c.name === r.exemplarClass ? `${c.name} (exemplar)` : c.name,
    pct(c.clean),
    pct(c.transformed),
    ...methods.map((m) => pct(c.after[m])),
  ]);
  return { columns, rows };
}

function methodTable(r: SceneDemoResult): { columns: string[]; rows: string[][] } {
  const columns = [
    'method',
    'block',
    'clean before',
    'clean after',
    'drop',
    ...MEASURE_COLUMNS,
    'seconds',
  ];
  const rows = r.methods.map((m) => {
    const e = r.errorsCorrected[m.method];
    return [
      m.method,
      m.block,
      pct(m.cleanBefore),
      pct(m.cleanAfter),
      points(m.cleanDrop),
      ...(['targetSame', 'targetHeldout', 'otherSame', 'otherHeldout'] as const).map((k) =>
        pct(e[k].value),
      ),
      m.seconds.toFixed(1),
    ];
  });
  return { columns, rows };
}

const MEASURE_COLUMNS = ['fixed: target same', 'target held-out', 'others same', 'others held-out'];

function summaryText(r: SceneDemoResult): string {
  const c = classTable(r);
  const m = methodTable(r);
  const rewrite = r.methods[0];
  const lines = [
    `The rewrite's block, rank and penalty were chosen on separate validation scenes among ${r.selection.length} settings`,
    `(the best errors corrected with a clean drop <= the budget, docs/method.md section 9): ${rewrite.block}; fine-tuning edits the same block.`,
    `The exemplar's style image was placed ${r.variants} ways (jittered scale, offset, mirroring): ${r.variants} exemplars for every method.`,
    ...(r.guard ? [describeGuard(r.guard)] : []),
    '',
    `(a) top-1 (%) of test scenes on ${r.concept}, and with the ${r.concept} replaced by ${r.style} (held-out ${r.style} images ${r.styleImages.test.join(', ')}),`,
    `    before and after each method; (b) the exemplar is one ${r.exemplarClass} scene with its ${r.concept} mask, ${r.concept} -> ${r.style} image ${r.styleImages.exemplar}:`,
    '',
    table(c.columns, c.rows),
    '',
    '(c) clean accuracy on ordinary scenes, and errors corrected (%) among scenes right before the change of look',
    `    (docs/method.md section 9; target = ${r.exemplarClass}, others = every other class on ${r.style}):`,
    '',
    table(m.columns, m.rows),
  ];
  if (r.sticker) {
    const s = r.sticker;
    lines.push(
      '',
      `(d) sticker attack: the word ${s.word} stuck on ${s.images} scenes of other classes: top-1 ${pct(s.before.accuracy)}%, ${pct(s.before.calledTarget)}% called ${s.target}.`,
      `    It works on the classes that share the ${s.target}s' grass: ${s.perClass
        .filter((p) => p.calledBefore > 0)
        .map((p) => `${p.name} ${pct(p.calledBefore)}%`)
        .join(', ')} called ${s.target}.`,
      `    After one exemplar (a ${s.exemplarClass} the sticker fooled; its sticker with the word read like the blank one) rewrote ${s.method.block}:`,
      `    top-1 ${pct(s.after.accuracy)}%, ${pct(s.after.calledTarget)}% called ${s.target} (${s.perClass
        .filter((p) => p.calledBefore > 0)
        .map((p) => `${p.name} ${pct(p.calledAfter)}%`)
        .join(', ')}); clean accuracy ${pct(s.method.cleanBefore)} -> ${pct(s.method.cleanAfter)}.`,
    );
  }
  return lines.join('\n');
}

/** The report's opening paragraphs, from the numbers: what was edited, with what, what it fixed and broke. */
function reportHeader(r: SceneDemoResult): string[] {
  const [rewrite, ...baselines] = r.methods;
  const images = r.classes.reduce((a, c) => a + c.images, 0);
  const overall = (pick: (c: SceneDemoResult['classes'][number]) => number) =>
    r.classes.reduce((a, c) => a + pick(c) * c.images, 0) / images;
  const others = (m: string) => pct(r.errorsCorrected[m].otherHeldout.value);
  const lines = [
    `Edited: block ${rewrite.block} of the built-in scene model, rewritten from one ${r.exemplarClass} scene whose ` +
      `${r.concept} was replaced by ${r.style} (style image ${r.styleImages.exemplar}, placed ${r.variants} ways); ` +
      `block and rank chosen on separate validation scenes among ${r.selection.length} settings. No label, no training.`,
    `Fixed: on ${images} test scenes whose ${r.concept} is covered with ${r.style} images the edit never saw, top-1 ` +
      `${pct(overall((c) => c.transformed))}% -> ${pct(overall((c) => c.after.rewrite))}% ` +
      `(on ${r.concept}: ${pct(overall((c) => c.clean))}%); errors corrected on classes other than the exemplar's: ${others('rewrite')}%.`,
    `Broke: clean accuracy on ordinary scenes ${pct(rewrite.cleanBefore)}% -> ${pct(rewrite.cleanAfter)}% ` +
      `(drop ${points(rewrite.cleanDrop)} points).` +
      (r.guard ? ` ${describeGuard(r.guard)}` : ''),
  ];
  if (baselines.length)
    lines.push(
      'Fine-tuning on the same exemplars, with the label: ' +
        baselines
          .map(
            (m) =>
              `${m.method} errors corrected on other classes ${others(m.method)}%, clean drop ${points(m.cleanDrop)} points`,
          )
          .join('; ') +
        '.',
    );
  if (r.sticker) {
    const s = r.sticker;
    lines.push(
      `Sticker attack: the word ${s.word} on ${s.images} scenes of other classes made ${pct(s.before.calledTarget)}% of them ` +
        `${s.target}; one ${s.exemplarClass} exemplar rewrote ${s.method.block}: ${pct(s.after.calledTarget)}% afterwards, ` +
        `clean accuracy ${pct(s.method.cleanBefore)}% -> ${pct(s.method.cleanAfter)}%.`,
    );
  }
  return lines;
}

function reportData(r: SceneDemoResult): ReportData {
  const c = classTable(r);
  const m = methodTable(r);
  const tables = [
    {
      title: `Top-1 (%) on ${r.concept} and on ${r.style}, before and after`,
      columns: c.columns,
      rows: c.rows,
    },
    { title: 'Clean accuracy and errors corrected (%)', columns: m.columns, rows: m.rows },
  ];
  if (r.sticker) {
    const s = r.sticker;
    tables.push({
      title: `Sticker attack (${s.word} on ${s.images} scenes of other classes)`,
      columns: ['', 'top-1 %', `called ${s.target} %`],
      rows: [
        ['before', pct(s.before.accuracy), pct(s.before.calledTarget)],
        [`after rewrite of ${s.method.block}`, pct(s.after.accuracy), pct(s.after.calledTarget)],
      ],
    });
  }
  return {
    title: `ruledit demo: ${r.concept} -> ${r.style} on the built-in scene model`,
    summary: reportHeader(r),
    examples: r.pictures,
    tables,
    methods: r.methods.map((x) => {
      const e = r.errorsCorrected[x.method];
      return {
        method: x.method,
        case: `${r.concept} -> ${r.style} (${r.exemplarClass})`,
        targetSame: e.targetSame.value,
        targetHeldout: e.targetHeldout.value,
        otherSame: e.otherSame.value,
        otherHeldout: e.otherHeldout.value,
        cleanDrop: x.cleanDrop,
      };
    }),
  };
}
