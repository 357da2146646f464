// The page: its state (the model's info, the image, the chosen replacement, the job it follows) and
// the actions that change it. api.ts talks to the server, views.ts draws its answers, dom.ts helps.
import { api, fileAsDataUrl, withToken } from './api.ts';
import { MaskPainter } from './mask.ts';
import { $, draw, guarded, pct, showTop5, status, table } from './dom.ts';
import { showEditFigures, showHistory, showRejected } from './views.ts';
import type {
  CompareRow,
  EditView,
  HistoryRow,
  JobView as Job,
  LoadedImage,
  MatchChanges,
  MatchResult,
  MethodName,
  PreviewResult,
  ServerInfo as Info,
} from '../src/server/wire.ts';

type Replacement = { style: string } | { texture: string } | { fill: string };

const painter = new MaskPainter($<HTMLCanvasElement>('mask'));
let info: Info;
let image: LoadedImage | undefined;
let replacement: Replacement | undefined;
let currentJob: string | undefined;
/** Latest record of every job: a quick job can finish before its POST has answered. */
const seen = new Map<string, Job>();

function follow(job: Job): void {
  currentJob = job.id;
  $<HTMLButtonElement>('cancel').disabled = false;
  onJob(seen.get(job.id) ?? job);
}

async function loadImage(body: Record<string, unknown>): Promise<void> {
  status('loading image…');
  image = await api<LoadedImage>('/api/images', body);
  await draw($<HTMLCanvasElement>('image'), image.png);
  painter.clear();
  showTop5($('top-x'), image.top5);
  $('top-xp').replaceChildren();
  $('concepts').replaceChildren(
    ...Object.keys(image.masks).map((name) => {
      const b = document.createElement('button');
      b.textContent = `mask: ${name}`;
      b.onclick = () => painter.set(image!.masks[name], image!.width, image!.height);
      return b;
    }),
  );
  status(`loaded ${image.name}`);
}

function exemplarBody(extra: Record<string, unknown> = {}) {
  if (!image) throw new Error('load an image first');
  if (!replacement) throw new Error('choose a new look (style, texture or fill) first');
  const mask = painter.read(image.width, image.height);
  if (!mask.some((v) => v > 0)) throw new Error('paint the concept mask first');
  // Each control sets its option of the methods it is for; the block, every method that edits one.
  const settings: Partial<Record<MethodName, Record<string, string | number>>> = {};
  const set = (method: MethodName, key: string, value: string | number) =>
    ((settings[method] ??= {})[key] = value);
  for (const [method, spec] of Object.entries(info.methods))
    if ('layer' in spec.options)
      set(method as MethodName, 'layer', $<HTMLSelectElement>('block').value);
  for (const [key, { id, methods }] of Object.entries(NUMBER_CONTROLS)) {
    const v = $<HTMLInputElement>(id).value;
    if (v.trim() !== '') for (const m of methods) set(m, key, Number(v));
  }
  return {
    image: image.id,
    mask,
    replacement,
    label: Number($<HTMLSelectElement>('label').value),
    settings,
    ...extra,
  };
}

/** The block the edit will change (what `auto` picks), with its key grid. */
function chosenBlock(): Info['blocks'][number] | undefined {
  const v = $<HTMLSelectElement>('block').value;
  return info?.blocks.find((b) => (v === 'auto' ? b.auto : b.name === v));
}

/** How many cells of a kh x kw key grid the mask reaches (any painted pixel inside the cell). */
function maskedCells(mask: number[], w: number, h: number, kh: number, kw: number): number {
  let n = 0;
  for (let i = 0; i < kh; i++)
    for (let j = 0; j < kw; j++) {
      let hit = false;
      for (let y = Math.floor((i * h) / kh); !hit && y < Math.ceil(((i + 1) * h) / kh); y++)
        for (let x = Math.floor((j * w) / kw); !hit && x < Math.ceil(((j + 1) * w) / kw); x++)
          hit = mask[y * w + x] > 0;
      if (hit) n++;
    }
  return n;
}

/** Before running: which block will be edited, and how much of its key grid the mask covers. */
function showBlockInfo(): void {
  const b = chosenBlock();
  const v = $<HTMLSelectElement>('block').value;
  if (!b) {
    $('block-info').textContent =
      v === 'auto' ? 'auto: no spatial block found; choose one by name' : '';
    return;
  }
  const [kh, kw] = b.keyGrid.split('x').map(Number);
  let text = `${v === 'auto' ? 'auto edits ' : ''}${b.name} (${b.weight}); key grid ${b.keyGrid}`;
  if (image && kh && kw) {
    const n = maskedCells(
      painter.read(image.width, image.height),
      image.width,
      image.height,
      kh,
      kw,
    );
    text += `: the mask touches ${n} of its ${kh * kw} cells`;
    // A coarse grid turns a careless brush into many cells: the guard will likely scale back.
    if (n > 0.75 * kh * kw) text += ' (most of the image: paint more precisely if you can)';
  }
  $('block-info').textContent = text;
}

async function preview(announce: unknown = true): Promise<void> {
  const out = await api<PreviewResult>('/api/preview', exemplarBody());
  await draw($<HTMLCanvasElement>('xprime'), out.png);
  showTop5($('top-x'), out.top5.x);
  showTop5($('top-xp'), out.top5.xPrime);
  // Every exemplar the edit will use: one per image of the chosen style.
  $('exemplars').replaceChildren(
    ...out.exemplars.map((e, i) => {
      const f = document.createElement('figure');
      const img = document.createElement('img');
      img.src = e.png;
      img.alt = `exemplar ${i + 1}`;
      const cap = document.createElement('figcaption');
      cap.textContent = `${e.top1.label} ${e.top1.p.toFixed(0)}%`;
      f.append(img, cap);
      return f;
    }),
  );
  showBlockInfo();
  if (announce)
    status(`preview ready: ${out.exemplars.length} exemplar${out.exemplars.length > 1 ? 's' : ''}`);
}

/** The context match over the test folders, before any edit: images with their heat maps. */
async function findMatches(): Promise<void> {
  status('matching the context over the test folders…');
  const out = await api<MatchResult>('/api/match', exemplarBody());
  const test = out.shown.filter((s) => s.folder === 'test').length;
  $('match-info').textContent =
    `${out.block}, keys on a ${out.grid} grid: ${test} of the ${out.shown.length} best matches are ` +
    `from the test folder (${out.titles.test}), which is ${out.testShare.all.toFixed(0)}% of the images searched`;
  $('matches').replaceChildren(
    ...out.shown.map((s, i) => {
      const f = document.createElement('figure');
      f.dataset.folder = s.folder;
      const box = document.createElement('div');
      box.className = 'heat';
      const img = document.createElement('img');
      img.src = s.src;
      img.alt = s.name;
      const heat = document.createElement('img');
      heat.src = s.heat;
      heat.alt = `match of ${s.name}`;
      heat.className = 'overlay';
      box.append(img, heat);
      const cap = document.createElement('figcaption');
      cap.textContent = `#${i + 1} ${s.score.toFixed(2)} ${s.folder}`;
      const pred = document.createElement('span');
      pred.className = 'pred';
      pred.textContent = s.top1;
      f.append(box, cap, pred);
      return f;
    }),
  );
  status(`context matched at ${out.block}`);
}

/** After an edit or undo: which of the matched images changed prediction. */
async function showMatchChanges(): Promise<void> {
  const figures = [...document.querySelectorAll<HTMLElement>('#matches figure')];
  if (!figures.length) return;
  const { before, after } = await api<MatchChanges>('/api/match/changes');
  figures.forEach((f, i) => {
    const changed = before[i] !== after[i];
    f.classList.toggle('changed', changed);
    f.querySelector('.pred')!.textContent = changed ? `${before[i]} → ${after[i]}` : after[i];
  });
  const n = figures.filter((f) => f.classList.contains('changed')).length;
  $('match-changes').textContent =
    `since matching: ${n} of the ${figures.length} changed prediction`;
}

function choose(r: Replacement, text: string): void {
  replacement = r;
  $('choice').textContent = `new look: ${text}`;
  for (const b of document.querySelectorAll('#styles button'))
    b.setAttribute(
      'aria-pressed',
      String(b.getAttribute('data-style') === ('style' in r ? r.style : '')),
    );
  if (image && painter.read(image.width, image.height).some((v) => v > 0)) void guarded(preview)();
}

async function submit(path: string, extra: Record<string, unknown> = {}): Promise<void> {
  const job = await api<Job>(path, exemplarBody(extra));
  $('guard').hidden = true;
  status(`job ${job.id} (${job.kind}) queued`);
  follow(job);
}

/** After an edit or undo, everything the page shows of the current model is asked for again. */
function refreshPredictions(): void {
  void guarded(showMatchChanges)();
  if (image && replacement) void guarded(() => preview(false))();
}

function showEdit(r: EditView): void {
  refreshPredictions();
  showEditFigures(r);
}

function onJob(job: Job): void {
  if (job.id !== currentJob) return;
  const bar = $<HTMLProgressElement>('progress');
  bar.value = job.progress;
  $('job').textContent =
    `job ${job.id} ${job.kind}: ${job.state} — ${job.message}${job.error ? `: ${job.error}` : ''}`;
  if (job.state === 'queued' || job.state === 'running') return;
  $<HTMLButtonElement>('cancel').disabled = true;
  currentJob = undefined;
  if (job.state === 'failed') {
    if (job.code === 'guard-rejected') showRejected(job.error ?? '');
    return status(job.error ?? 'failed', true);
  }
  if (job.state !== 'done') return status(job.state);
  status(`${job.kind} done`);
  if (job.kind === 'compare') {
    const r = job.result as { rows: CompareRow[]; label: string };
    table(
      $<HTMLTableElement>('comparison'),
      [
        'method',
        'block',
        "x' top-1",
        'test %',
        'clean %',
        'drop',
        'fixed',
        'broken',
        'strength',
        'flips %',
        's',
      ],
      r.rows.map((x) => [
        x.method,
        x.block,
        x.rejected ? 'rejected by the guard' : x.xPrimeTop1,
        pct(x.testAfter),
        pct(x.cleanAfter),
        pct(x.cleanDrop),
        x.fixedCount,
        x.brokenCount,
        x.strength?.toFixed(3) ?? '-',
        x.flipRate?.toFixed(2) ?? '-',
        x.seconds.toFixed(1),
      ]),
    );
  } else if (job.kind === 'revert') {
    showHistory((job.result as { history: HistoryRow[] }).history);
    refreshPredictions();
  } else showEdit(job.result as EditView);
}

/** A style, not one image: say how many exemplars it makes and what the test scenes use. */
function styleChoice(style: string): string {
  const n = info.styleImages;
  const test = info.builtin
    ? `; the test scenes are covered with other ${style} images, never used by the edit`
    : '';
  return `style ${style}: all ${n} images, one exemplar each${test}`;
}

/**
 * Number inputs, the option of the registry each sets and the methods it sets it for (fine-tuning's
 * steps and lr, not the rewrite's or retrain-last's; the drop budget of every guarded method).
 */
const NUMBER_CONTROLS: Record<string, { id: string; methods: MethodName[] }> = {
  rank: { id: 'rank', methods: ['rewrite'] },
  maxDrop: { id: 'max-drop', methods: ['rewrite', 'retrain-last'] },
  steps: { id: 'ft-steps', methods: ['finetune-local', 'finetune-global'] },
  lr: { id: 'ft-lr', methods: ['finetune-local', 'finetune-global'] },
};

/** Each number input shows its option's default and bounds, as the registry declares them. */
function setControls(methods: Info['methods']): void {
  for (const [
    key,
    {
      id,
      methods: [method],
    },
  ] of Object.entries(NUMBER_CONTROLS)) {
    const o = methods[method].options[key];
    const input = $<HTMLInputElement>(id);
    input.value = String(o.default);
    input.title = o.help;
    if (o.min !== undefined) input.min = String(o.min);
    if (o.max !== undefined) input.max = String(o.max);
  }
}

async function init(): Promise<void> {
  info = await api<Info>('/api/info');
  setControls(info.methods);
  $('model').textContent = info.model;
  const sel = $<HTMLSelectElement>('sample');
  for (const s of info.samples)
    sel.add(new Option(`sample: ${s.caption}`, JSON.stringify({ sample: s.id })));
  for (const d of info.data) {
    const { files } = await api<{ files: string[] }>(`/api/files?folder=${d.folder}`);
    for (const f of files)
      sel.add(new Option(`${d.name}/${f}`, JSON.stringify({ folder: d.folder, path: f })));
  }
  for (const b of info.blocks.filter((b) => b.editable))
    $<HTMLSelectElement>('block').add(
      new Option(`${b.index} ${b.name} (${b.weight}, keys ${b.keyGrid})`, b.name),
    );
  showBlockInfo();
  info.labels.forEach((l, i) => $<HTMLSelectElement>('label').add(new Option(l, String(i))));
  table(
    $<HTMLTableElement>('blocks'),
    ['#', 'name', 'chain', 'weight', 'key grid', 'output', 'editable'],
    info.blocks.map((b) => [
      b.index,
      b.auto ? `${b.name} (auto)` : b.name,
      b.chain,
      b.weight,
      b.keyGrid,
      b.spatial,
      b.editable ? 'yes' : `no: ${b.reason ?? ''}`,
    ]),
  );
  $('styles').replaceChildren(
    ...info.styles.map((s) => {
      const b = document.createElement('button');
      b.dataset.style = s;
      b.title = `${s}: the edit uses all ${info.styleImages} images of the style`;
      const img = document.createElement('img');
      img.src = withToken(`/api/styles/${s}/0`);
      img.alt = s;
      b.append(img);
      b.onclick = () => choose({ style: s }, styleChoice(s));
      return b;
    }),
  );
  showHistory(info.history);
  const events = new EventSource(withToken('/api/events'));
  events.onmessage = (m) => {
    const job = JSON.parse(m.data) as Job;
    seen.set(job.id, job);
    onJob(job);
  };
  status('ready');
}

$<HTMLSelectElement>('sample').onchange = guarded(async () => {
  const v = $<HTMLSelectElement>('sample').value;
  if (v) await loadImage(JSON.parse(v));
});
$<HTMLInputElement>('upload').onchange = guarded(async () => {
  const f = $<HTMLInputElement>('upload').files?.[0];
  if (f) await loadImage({ upload: await fileAsDataUrl(f), name: f.name });
});
$<HTMLInputElement>('texture').onchange = guarded(async () => {
  const f = $<HTMLInputElement>('texture').files?.[0];
  if (!f) return;
  const { id } = await api<{ id: string }>('/api/textures', { upload: await fileAsDataUrl(f) });
  choose({ texture: id }, `texture ${f.name}`);
});
$('use-fill').onclick = () =>
  choose({ fill: $<HTMLInputElement>('fill').value }, `fill ${$<HTMLInputElement>('fill').value}`);
for (const r of document.querySelectorAll<HTMLInputElement>('input[name=tool]'))
  r.onchange = () => (painter.tool = r.value as 'brush' | 'eraser');
$<HTMLInputElement>('brush').oninput = () =>
  (painter.radius = Number($<HTMLInputElement>('brush').value) / 2);
painter.radius = Number($<HTMLInputElement>('brush').value) / 2;
$('clear').onclick = () => painter.clear();
$<HTMLInputElement>('mask-opacity').oninput = () =>
  ($('mask').style.opacity = $<HTMLInputElement>('mask-opacity').value);
$('toast').onclick = () => ($('toast').hidden = true);
painter.onChange = showBlockInfo;
$<HTMLSelectElement>('block').onchange = showBlockInfo;
$('preview').onclick = guarded(preview);
$('match').onclick = guarded(findMatches);
$('run').onclick = guarded(() => submit('/api/edit', { method: 'rewrite' }));
$('compare').onclick = guarded(() => submit('/api/compare'));
$('cancel').onclick = guarded(async () => {
  if (currentJob) await api(`/api/jobs/${currentJob}/cancel`, {});
});
$('undo').onclick = guarded(async () => {
  follow(await api<Job>('/api/revert', {}));
});
$<HTMLAnchorElement>('download-model').href = withToken('/api/model.onnx');
$<HTMLAnchorElement>('download-report').href = withToken('/api/report.html');

void guarded(init)();
