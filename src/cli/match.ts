import { ABOUT } from './commands.js';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { loadClassifier, type Classifier } from '../classifier.js';
import { openDataset } from '../data/dataset.js';
import { decodeImage } from '../data/image.js';
import { contextMatch, type ContextMatch } from '../edit/match.js';
import { inputToPng, maskToPng } from '../report/images.js';
import type { ReportData } from '../report/types.js';
import { checkReportDir, writeReport } from '../report/write.js';
import { exemplarCommand, exemplarInputs, loadExemplars, type ExemplarFlags } from './exemplars.js';
import { methodOption, intOption, refreshOption } from './options.js';
import { progress } from './progress.js';
import { table } from './table.js';

interface MatchFlags extends Omit<ExemplarFlags, 'out' | 'force'> {
  statsData: string;
  data: string;
  rank: number;
  whiteningFloor: number;
  refresh: boolean;
  top: number;
  report?: string;
  force: boolean;
}

export function registerMatch(program: Command): void {
  exemplarCommand(program, 'match', ABOUT.match, false)
    .addOption(methodOption('rewrite', 'layer'))
    .requiredOption('--stats-data <dir>', 'reference images for the key statistics (as for edit)')
    .requiredOption('--data <dir>', 'images to search')
    .addOption(methodOption('rewrite', 'rank'))
    .addOption(methodOption('rewrite', 'whiteningFloor'))
    .addOption(refreshOption('the key statistics'))
    .option('--top <n>', 'images shown (and in the report); 0: all', intOption, 12)
    .option('--report <dir>', 'write an HTML/JSON/CSV report with the heat maps into DIR')
    .option('--force', 'replace the files of a report already in --report', false)
    .action(matchCommand);
}

async function matchCommand(modelPath: string, opts: MatchFlags): Promise<void> {
  if (opts.report) checkReportDir(opts.report, { force: opts.force });
  const classifier = await loadClassifier(modelPath, opts);
  const flags: ExemplarFlags = { ...opts, out: '', force: false };
  const exemplars = await loadExemplars(flags, classifier.spec);
  const [reference, data] = [await openDataset(opts.statsData), await openDataset(opts.data)];
  const bar = progress('match', data.items.length);
  const m = await contextMatch(classifier, exemplars, data.items, {
    layer: opts.layer,
    rank: opts.rank,
    statsData: reference.items,
    whiteningFloor: opts.whiteningFloor,
    refresh: opts.refresh,
    threads: opts.threads,
    onWarning: (w) => process.stderr.write(`warning: ${w}\n`),
    onBatch: (n) => bar.tick(n),
  });
  bar.done();
  if (opts.json) {
    console.log(
      JSON.stringify(
        {
          block: m.block,
          grid: m.grid,
          ranking: m.ranking.map(({ file, score }) => ({ file, score })),
        },
        null,
        2,
      ),
    );
  } else {
    const top = opts.top ? m.ranking.slice(0, opts.top) : m.ranking;
    console.log(
      `${m.block}: keys on a ${m.grid.height}x${m.grid.width} grid; ${exemplars.length} exemplar(s); ` +
        `match 1 = the exemplars' own masked keys\n`,
    );
    console.log(
      table(
        ['rank', 'match', 'image'],
        top.map((r, i) => [String(i + 1), r.score.toFixed(2), r.file]),
      ),
    );
  }
  if (opts.report) {
    const written = await writeReport(
      await matchReport(m, classifier, opts, exemplars.length),
      opts.report,
      {
        force: opts.force,
        protect: [modelPath, ...exemplarInputs(flags)].filter((f): f is string => !!f),
      },
    );
    process.stderr.write(`wrote ${written.html}\n`);
  }
}

/** The report: the best matches with their heat maps (white = as strong as the exemplars), and the ranking. */
async function matchReport(
  m: ContextMatch,
  classifier: Classifier,
  opts: MatchFlags,
  exemplars: number,
): Promise<ReportData> {
  const { spec } = classifier;
  const [h, w] = spec.size;
  const shown = opts.top ? m.ranking.slice(0, opts.top) : m.ranking;
  const examples = await Promise.all(
    shown.map(async (r, i) => ({
      caption: `#${i + 1}, match ${r.score.toFixed(2)}: ${basename(r.file)}`,
      original: await inputToPng(await decodeImage(r.file, spec), spec),
      mask: await maskToPng(upsample(r.map, m.grid, h, w), [h, w]),
      maskLabel: 'match',
    })),
  );
  return {
    title: `Where the context matches: ${m.block}`,
    summary: [
      `${exemplars} exemplar(s) from ${opts.image.join(', ')}; direction of rank ${m.direction.rank} at ${m.block}, ` +
        `keys on a ${m.grid.height}x${m.grid.width} grid; statistics from ${opts.statsData}.`,
      `${m.ranking.length} images of ${opts.data}, ranked by their strongest match; the heat maps show the match ` +
        "per key position, white where it is as strong as on the exemplars' masked concept (1) or stronger.",
    ],
    examples,
    tables: [
      {
        title: "Ranking by strongest match (1 = the exemplars' own)",
        columns: ['rank', 'match', 'image'],
        rows: m.ranking.map((r, i) => [i + 1, Number(r.score.toFixed(3)), r.file]),
      },
    ],
  };
}

/** A key-grid map at the input size, each key position a block of pixels (no interpolation). */
function upsample(map: Float32Array, grid: ContextMatch['grid'], h: number, w: number) {
  const out = new Float32Array(h * w);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      out[y * w + x] =
        map[Math.floor((y * grid.height) / h) * grid.width + Math.floor((x * grid.width) / w)];
  return out;
}
