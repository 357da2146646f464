// What the page draws of the server's answers: plain functions of the wire's data.
import type { EditSafety, EditView, HistoryRow, Thumb } from '../src/server/wire.ts';
import { $, pct, showTop5, table } from './dom.ts';

/** The safety guard's verdict after an edit: flips against the budget, mean KL, strength kept. */
export function showGuard(r: EditSafety): void {
  const el = $('guard');
  el.hidden = false;
  const g = r.guard;
  if (!g) {
    el.className = 'guard';
    el.textContent = r.guardText;
    return;
  }
  const full = g.trials[0];
  const kept =
    g.strength < full.strength
      ? `Backed off to ${g.strength.toFixed(3)} of the solved change: estimated clean drop ${full.estimatedDrop.toFixed(2)} points at full strength, budget ${g.maxDrop}.`
      : 'Strength kept: the full solved change.';
  const calibrated =
    g.temperature === 1
      ? "from the model's own probabilities"
      : 'calibrated on the labelled guard images';
  const grid = r.keyGrid
    ? ` Key grid ${r.keyGrid.height}x${r.keyGrid.width}, the mask on ${r.keyGrid.masked} cells.`
    : '';
  el.className = g.strength < 1 ? 'guard backed-off' : 'guard';
  el.textContent =
    `Safety guard: estimated clean drop ${g.estimatedDrop.toFixed(2)} points (budget ${g.maxDrop}; ${calibrated}); ` +
    `${g.flips} of ${g.images} held-out images changed top-1 (${g.flipRate.toFixed(2)}%), mean KL ${g.meanKL.toExponential(2)}. ${kept}${grid} `;
  // The edit is applied: taking it back is one click where its figures are read.
  const undo = document.createElement('button');
  undo.textContent = 'undo this edit';
  undo.onclick = () => $('undo').click();
  el.append(undo);
}

export function showRejected(message: string): void {
  const el = $('guard');
  el.hidden = false;
  el.className = 'guard error';
  el.textContent = `Edit rejected, model unchanged. ${message}`;
}

/** An edit's figures: the guard, x' before and after, the evaluation, the history. */
export function showEditFigures(r: EditView): void {
  $('result').hidden = false;
  showGuard(r);
  showTop5($('xp-before'), r.xPrime.before);
  showTop5($('xp-after'), r.xPrime.after);
  showTop5($('top-xp'), r.xPrime.after);
  const e = r.evaluation;
  $('summary').textContent =
    `Edited ${r.block} with ${r.exemplars.length} exemplar${r.exemplars.length > 1 ? 's' : ''}. ${e.testTitle}: ${pct(e.testBefore)}% → ${pct(e.testAfter)}% (${e.fixedCount} fixed, ${e.brokenCount} broken). ` +
    `Clean accuracy (${e.cleanTitle}): ${pct(e.cleanBefore)}% → ${pct(e.cleanAfter)}%, drop ${pct(e.cleanDrop)} points.`;
  table(
    $<HTMLTableElement>('per-class'),
    ['class', 'images', 'before %', 'after %'],
    e.perClass.map((c) => [c.name, c.n, pct(c.before), pct(c.after)]),
  );
  const thumbs = (el: HTMLElement, list: Thumb[]) =>
    el.replaceChildren(
      ...list.map((t) => {
        const f = document.createElement('figure');
        const img = document.createElement('img');
        img.src = t.src;
        img.alt = t.truth;
        const cap = document.createElement('figcaption');
        cap.textContent = `${t.truth}: ${t.before} → ${t.after}`;
        f.append(img, cap);
        return f;
      }),
    );
  thumbs($('fixed'), e.fixed);
  thumbs($('broken'), e.broken);
  showHistory(r.history);
}

export function showHistory(rows: HistoryRow[]): void {
  $('history').replaceChildren(
    ...rows.map((h) => {
      const li = document.createElement('li');
      li.textContent = `${h.method} ${h.block ?? ''} ${h.time.slice(11, 19)}${h.method !== 'revert' && !h.active ? ' (undone)' : ''}`;
      return li;
    }),
  );
}
