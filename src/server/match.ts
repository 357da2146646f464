import { basename } from 'node:path';
import { contextMatch } from '../edit/match.js';
import { maskToPng } from '../report/images.js';
import type { PreparedEdit, Workbench } from './workbench.js';
import { pngUrl } from './pixels.js';
import { thumb } from './tasks.js';
import type { MatchChanges, MatchResult } from './wire.js';
import { predictFiles } from '../eval/predictions.js';

/** Matches the page shows. */
const SHOWN = 12;

/**
 * The page's "where does this rule apply?": the context match (edit/match.ts) of the prepared
 * exemplars with the current model over the test folders (the styled test scenes and the
 * ordinary ones), before anything is edited.
 */
export async function matchPanel(wb: Workbench, p: PreparedEdit): Promise<MatchResult> {
  const tests = await wb.testSets(p.style);
  const items = [
    ...tests.test.items.map((i) => ({ ...i, folder: 'test' as const })),
    ...tests.clean.items.map((i) => ({ ...i, folder: 'clean' as const })),
  ];
  const { layer, rank } = p.params.settings.rewrite ?? {};
  const m = await contextMatch({ ...wb.classifier, model: wb.model }, p.exemplars, items, {
    statsData: await wb.statsData(),
    layer: layer as string | undefined,
    rank: rank as number | undefined,
  });
  const folderOf = new Map(items.map((i) => [i.file, i.folder]));
  const files = m.ranking.slice(0, SHOWN).map((r) => r.file);
  const top1 = await matchedTop1(wb, files);
  wb.matched = { files, before: top1 };
  const shown = await Promise.all(
    m.ranking.slice(0, SHOWN).map(async (r, i) => ({
      name: basename(r.file),
      top1: top1[i],
      folder: folderOf.get(r.file)!,
      score: r.score,
      src: await thumb(r.file),
      heat: pngUrl(await maskToPng(r.map, [m.grid.height, m.grid.width])),
    })),
  );
  const share = (list: { folder: string }[]) =>
    (100 * list.filter((x) => x.folder === 'test').length) / list.length;
  return {
    block: m.block,
    grid: `${m.grid.height}x${m.grid.width}`,
    shown,
    testShare: { shown: share(shown), all: share(items) },
    titles: { test: tests.test.title, clean: tests.clean.title },
  };
}

/** After edits: the current model's top-1 on the images the panel last showed, and before. */
export async function matchChanges(wb: Workbench): Promise<MatchChanges> {
  const shown = wb.matched;
  if (!shown) return { before: [], after: [] };
  return { before: shown.before, after: await matchedTop1(wb, shown.files) };
}

async function matchedTop1(wb: Workbench, files: string[]): Promise<string[]> {
  const top1 = await predictFiles(wb.model, files, wb.spec);
  return Array.from(top1, (c) => wb.labels?.[c] ?? String(c));
}
