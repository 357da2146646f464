import { readdir, stat } from 'node:fs/promises';
import { dirname, extname, isAbsolute, join, relative, resolve } from 'node:path';
import { RuleditError } from '../errors.js';
import { readInput } from '../io/read-input.js';

export interface DatasetItem {
  /** Absolute path of the image. */
  file: string;
  label?: number;
  name?: string;
}

export interface Dataset {
  root: string;
  items: DatasetItem[];
  classNames?: Map<number, string>;
}

const IMAGE = new Set(['.jpg', '.jpeg', '.png', '.webp']);
const isImage = (f: string) => IMAGE.has(extname(f).toLowerCase());

/**
 * A data set from: a folder with labels.csv; a CSV manifest (file,class[,name]); a folder of class
 * sub-folders; a folder of images (unlabelled); or a .txt list of image paths (unlabelled).
 */
export async function openDataset(path: string): Promise<Dataset> {
  const root = resolve(path);
  let info;
  try {
    info = await stat(root);
  } catch {
    throw new RuleditError(
      'not-found',
      `data set not found: ${path} (give a folder of images, a .csv manifest or a .txt list)`,
    );
  }
  let dataset: Dataset;
  if (info.isFile()) {
    const ext = extname(root).toLowerCase();
    if (ext === '.csv') dataset = await fromManifest(root);
    else if (ext === '.txt') dataset = await fromList(root);
    else
      throw new RuleditError(
        'bad-dataset',
        `${path}: a data set file must be a .csv manifest or a .txt list of images`,
      );
  } else {
    const { folders, images, manifest } = await listFolder(root);
    if (manifest) dataset = await fromManifest(join(root, 'labels.csv'), { confined: true });
    else if (folders.length && images.length)
      throw new RuleditError(
        'bad-dataset',
        `${path} holds both images and sub-folders, so it is neither a folder of images nor one ` +
          `sub-folder per class: move the images into class sub-folders, or add a labels.csv`,
      );
    else if (folders.length) dataset = await fromClassFolders(root, folders);
    else dataset = { root, items: images.map((f) => ({ file: join(root, f) })) };
  }
  if (!dataset.items.length) {
    throw new RuleditError('bad-dataset', `${path} holds no images (JPEG, PNG or WebP)`);
  }
  return dataset;
}

/** A folder's sub-folders and image files (sorted, symlinks followed) and whether it has labels.csv. */
async function listFolder(
  dir: string,
): Promise<{ folders: string[]; images: string[]; manifest: boolean }> {
  const folders: string[] = [];
  const images: string[] = [];
  let manifest = false;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    // Dot-entries are tool litter (.DS_Store, macOS '._x.jpg' forks, .ipynb_checkpoints), not data.
    if (e.name.startsWith('.')) continue;
    const target = e.isSymbolicLink() ? await stat(join(dir, e.name)).catch(() => undefined) : e;
    if (target?.isDirectory()) folders.push(e.name);
    else if (target?.isFile() && e.name === 'labels.csv') manifest = true;
    else if (target?.isFile() && isImage(e.name)) images.push(e.name);
  }
  return { folders: folders.sort(), images: images.sort(), manifest };
}

/**
 * A manifest's rows. A folder's own labels.csv names images of that folder (a row such as
 * ../../etc/passwd is refused); a .csv the user names as the data set may point anywhere. An image
 * listed twice would be counted twice, and with two classes it has no label: both are refused.
 */
async function fromManifest(csv: string, { confined = false } = {}): Promise<Dataset> {
  // A spreadsheet's 'CSV UTF-8' export starts with a byte-order mark that would hide 'file'.
  const lines = (await readInput(csv, 'data set manifest'))
    .toString('utf8')
    .replace(/^\uFEFF/, '')
    .split(/\r?\n/);
  const header = parseCsvLine(lines[0] ?? '').map((h) => h.trim().toLowerCase());
  const [fileCol, classCol, nameCol] = ['file', 'class', 'name'].map((h) => header.indexOf(h));
  if (fileCol < 0 || classCol < 0) {
    throw new RuleditError(
      'bad-dataset',
      `${csv}: the first line must be a header with columns file,class[,name]`,
    );
  }
  const items: DatasetItem[] = [];
  const classNames = new Map<number, string>();
  const seen = new Map<string, { line: number; label: number }>();
  const folder = dirname(csv);
  lines.slice(1).forEach((line, i) => {
    if (!line.trim()) return;
    const cells = parseCsvLine(line);
    const where = `${csv} line ${i + 2}`;
    const file = cells[fileCol]?.trim();
    if (!file) throw new RuleditError('bad-dataset', `${where}: no file name`);
    // Digits only: Number() would also take '1e2', '0x1f' and '3.0' as whole numbers.
    const raw = (cells[classCol] ?? '').trim();
    const label = Number(raw);
    if (!/^\d+$/.test(raw) || !Number.isSafeInteger(label)) {
      throw new RuleditError(
        'bad-dataset',
        `${where}: class must be a whole number >= 0 (the model's output index), got '${raw}'`,
      );
    }
    const name = nameCol >= 0 ? cells[nameCol]?.trim() || undefined : undefined;
    if (name) classNames.set(label, name);
    const path = resolve(folder, file);
    const inside = relative(folder, path);
    if (confined && (inside.startsWith('..') || isAbsolute(inside)))
      throw new RuleditError(
        'bad-dataset',
        `${where}: '${file}' is outside the data set's folder ${folder}; a labels.csv names images inside its folder`,
      );
    const earlier = seen.get(path);
    if (earlier)
      throw new RuleditError(
        'bad-dataset',
        `${where}: '${file}' is listed again (first on line ${earlier.line}${earlier.label === label ? '' : `, as class ${earlier.label}; here class ${label}`}): list each image once`,
      );
    seen.set(path, { line: i + 2, label });
    items.push({ file: path, label, ...(name ? { name } : {}) });
  });
  return { root: folder, items, ...(classNames.size ? { classNames } : {}) };
}

/** One CSV record (RFC 4180 quoting: "a, b" and doubled quotes). */
function parseCsvLine(line: string): string[] {
  const cells: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') [cell, i] = [cell + '"', i + 1];
      else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') [cells.push(cell), (cell = '')];
    else cell += ch;
  }
  cells.push(cell);
  return cells;
}

async function fromClassFolders(root: string, folders: string[]): Promise<Dataset> {
  // Integer folder names are class indices (ImageNet-style '0'..'999'); otherwise sorted names.
  const numeric = folders.every((f) => /^\d+$/.test(f));
  const sorted = [...folders].sort((a, b) =>
    numeric ? Number(a) - Number(b) : a < b ? -1 : a > b ? 1 : 0,
  );
  const classNames = new Map<number, string>();
  const items: DatasetItem[] = [];
  for (const [i, folder] of sorted.entries()) {
    const label = numeric ? Number(folder) : i;
    if (!numeric) classNames.set(label, folder);
    const { images: files } = await listFolder(join(root, folder));
    for (const f of files)
      items.push({ file: join(root, folder, f), label, ...(numeric ? {} : { name: folder }) });
  }
  return { root, items, ...(classNames.size ? { classNames } : {}) };
}

async function fromList(txt: string): Promise<Dataset> {
  const items = (await readInput(txt, 'image list'))
    .toString('utf8')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => ({ file: resolve(dirname(txt), l) }));
  return { root: dirname(txt), items };
}
