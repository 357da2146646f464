// Small DOM helpers every view uses.
import type { Prediction } from '../src/server/wire.ts';

export const $ = <T extends HTMLElement = HTMLElement>(id: string) =>
  document.getElementById(id) as T;

export function status(text: string, error = false): void {
  const s = $('status');
  s.textContent = text;
  s.className = error ? 'error' : '';
  // An error also shows at the bottom of the window, wherever the user has scrolled to.
  const toast = $('toast');
  toast.textContent = error ? text : '';
  toast.hidden = !error;
}

/** Run an action, showing its error in the status line instead of losing it in the console. */
export const guarded =
  <A extends unknown[]>(f: (...a: A) => Promise<void>) =>
  (...a: A) =>
    f(...a).catch((e: Error) => status(e.message, true));

export function showTop5(list: HTMLElement, preds: Prediction[]): void {
  list.replaceChildren(
    ...preds.map((p) => {
      const li = document.createElement('li');
      li.textContent = `${p.label} ${p.p.toFixed(1)}%`;
      const bar = document.createElement('span');
      bar.style.width = `${Math.max(1, p.p * 0.6)}px`;
      li.append(bar);
      return li;
    }),
  );
}

export function draw(canvas: HTMLCanvasElement, src: string): Promise<void> {
  return new Promise((resolve) => {
    const img = new Image();
    img.onload = () => {
      const c = canvas.getContext('2d')!;
      c.imageSmoothingEnabled = false;
      c.clearRect(0, 0, canvas.width, canvas.height);
      c.drawImage(img, 0, 0, canvas.width, canvas.height);
      resolve();
    };
    img.src = src;
  });
}

export function table(el: HTMLTableElement, head: string[], rows: (string | number)[][]): void {
  const tr = (cells: (string | number)[], tag: string) => {
    const r = document.createElement('tr');
    for (const c of cells) {
      const d = document.createElement(tag);
      d.textContent = String(c);
      r.append(d);
    }
    return r;
  };
  el.replaceChildren(tr(head, 'th'), ...rows.map((r) => tr(r, 'td')));
  el.hidden = false;
}

export const pct = (v: number) => (v === null || Number.isNaN(v) ? 'n/a' : v.toFixed(1));
