import type { Command } from 'commander';
import { ABOUT } from './commands.js';
import { RuleditError } from '../errors.js';
import { readReport } from '../report/json.js';
import { screenshotReport } from '../report/screenshot.js';
import { writeReport } from '../report/write.js';

export function registerReport(program: Command): void {
  program
    .command('report')
    .description(ABOUT.report)
    .argument('<report>', 'report.json written by ruledit')
    .requiredOption('--out <dir>', 'folder for report.html, report.json and the CSV files')
    .option('--force', 'replace the files of a report already in --out', false)
    .option(
      '--screenshot <png>',
      'also open the HTML in headless Chromium and save a full-page screenshot',
    )
    .option(
      '--chromium <path>',
      'Chromium binary for --screenshot (default: $CHROMIUM_PATH or /usr/bin/chromium)',
    )
    .action(reportCommand);
}

export interface ReportFlags {
  out: string;
  force: boolean;
  screenshot?: string;
  chromium?: string;
}

export async function reportCommand(input: string, opts: ReportFlags): Promise<void> {
  const data = await readReport(input);
  const written = await writeReport(data, opts.out, { force: opts.force, protect: [input] });
  console.log(`wrote ${written.html}`);
  console.log(`wrote ${written.json}`);
  for (const f of written.csv) console.log(`wrote ${f}`);
  if (!opts.screenshot) return;
  const check = await screenshotReport(written.html, opts.screenshot, {
    executablePath: opts.chromium,
    force: opts.force,
  });
  const broken = check.images.filter((i) => i.naturalWidth === 0);
  const s = check.screenshot;
  console.log(
    `wrote ${s.path} (${s.width}x${s.height}, ${check.images.length} images, ${check.charts.length} charts)`,
  );
  if (broken.length || check.external.length)
    throw new RuleditError(
      'bad-report',
      `the report did not render cleanly: ${broken.length} images failed to load` +
        (check.external.length ? `; external requests: ${check.external.join(', ')}` : ''),
    );
}
