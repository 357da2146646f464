import type { Exemplar } from '../concepts/exemplar.js';
import { METHODS } from '../edit/methods.js';
import { withTraces } from '../runtime/block-trace.js';
import { rewrite, type RewriteOptions, type RewriteReport } from '../edit/rewrite.js';
import { isRuleditError } from '../errors.js';
import { listBlocks } from '../onnx/blocks.js';
import type { OnnxModel } from '../onnx/model.js';
import { selectSetting } from './protocol.js';

/**
 * Validated selection of a rewrite (docs/method.md section 9): block x rank x penalty x strength tried
 * on labelled images of the failure case, each edit under the safety guard; the best validation
 * score among settings within the clean-drop budget wins. One routine for `edit --validate` and
 * the demo (the harness scores its grid the same way, with selectSetting on its own splits).
 */
export interface RewriteSetting {
  layer: string;
  rank: number;
  penalty: number;
  strength: number;
}

export interface SelectionRow extends RewriteSetting {
  /** Validation score (higher is better), and clean accuracy drop in points. NaN when rejected. */
  score: number;
  cleanDrop: number;
  /** The block actually edited, the strength the guard kept and its flip rate. */
  block?: string;
  kept?: number;
  flipRate?: number;
  /** Why the guard refused this setting. */
  rejected?: string;
}

export interface GridOptions {
  layers?: string[];
  ranks?: number[];
  penalties?: number[];
  strengths?: number[];
}

/** Every editable convolution but the first (it sees pixels, not concepts), unless layers are given. */
export function rewriteGrid(model: OnnxModel, grid: GridOptions): RewriteSetting[] {
  const layers =
    grid.layers ??
    listBlocks(model.proto.graph!)
      .filter((b) => b.editable && b.op === 'Conv')
      .slice(1)
      .map((b) => b.name);
  const D = METHODS.rewrite.options;
  const out: RewriteSetting[] = [];
  for (const layer of layers)
    for (const rank of grid.ranks ?? [D.rank.default])
      for (const penalty of grid.penalties ?? [D.penalty.default])
        for (const strength of grid.strengths ?? [D.strength.default])
          out.push({ layer, rank, penalty, strength });
  return out;
}

export async function chooseRewrite(
  model: OnnxModel,
  exemplars: Exemplar[],
  base: Omit<RewriteOptions, keyof RewriteSetting>,
  settings: RewriteSetting[],
  measure: (
    edited: OnnxModel,
    report: RewriteReport,
  ) => Promise<{ score: number; cleanDrop: number }>,
  maxDrop: number,
): Promise<{
  rows: SelectionRow[];
  chosen?: { row: SelectionRow; model: OnnxModel; report: RewriteReport };
}> {
  // Every setting's rewrite reads the same guard and preserve images: once, through one set of traces.
  return withTraces(base.traces, model, base.spec, base.threads, async (traces) => {
    const rows: SelectionRow[] = [];
    let chosen: { row: SelectionRow; model: OnnxModel; report: RewriteReport } | undefined;
    for (const [i, setting] of settings.entries()) {
      base.onProgress?.(`setting ${i + 1}/${settings.length}: ${JSON.stringify(setting)}`);
      let out;
      try {
        out = await rewrite(model, exemplars, {
          ...base,
          ...setting,
          traces,
          onProgress: undefined,
        });
      } catch (e) {
        // A setting the guard refuses, or a rank the exemplars' masked positions cannot carry, is
        // that setting's outcome, not the selection's failure.
        if (!isRuleditError(e) || !['guard-rejected', 'bad-rank'].includes(e.code)) throw e;
        rows.push({ ...setting, score: NaN, cleanDrop: NaN, rejected: e.message });
        continue;
      }
      const row: SelectionRow = {
        ...setting,
        ...(await measure(out.model, out.report)),
        block: out.report.block,
        kept: out.report.strength,
        flipRate: out.report.guard?.flipRate,
      };
      rows.push(row);
      // Keep only the best edited model so far in memory, not one per setting.
      const best = selectSetting(
        rows
          .filter((r) => !r.rejected)
          .map((r) => ({ setting: r, score: r.score, cleanDrop: r.cleanDrop })),
        maxDrop,
      );
      if (best?.setting === row) chosen = { row, model: out.model, report: out.report };
    }
    return { rows, ...(chosen ? { chosen } : {}) };
  });
}
