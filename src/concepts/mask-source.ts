import { stat } from 'node:fs/promises';
import { basename, join, relative, resolve, sep } from 'node:path';
import sharp from 'sharp';
import { categoryIds, loadCoco, segmentationMask, type CocoAnnotation } from '../data/coco.js';
import type { Dataset, DatasetItem } from '../data/dataset.js';
import { loadMask } from '../data/mask.js';
import {
  findMaskFile,
  listMaskFiles,
  maskConcepts,
  readMaskAtImage,
  repeatedStems,
  uprightSize,
} from '../data/mask-files.js';
import { RuleditError } from '../errors.js';
import {
  isBackground,
  loadSegmenter,
  segmentationAssets,
  segmentLimits,
  type Segmenter,
} from './segment.js';
import type { Skips } from './skips.js';

/** Where concept masks come from (docs/method.md section 9). */
export type MaskSource =
  | { kind: 'masks'; dir: string }
  | { kind: 'coco'; file: string }
  | {
      kind: 'segmentation';
      /**
       * One model, or several whose label sets are merged into one list of concepts (a segmenter
       * of things and one of stuff); a concept two of them know is the union of their masks.
       */
      model: string | string[];
      threshold?: number;
      minArea?: number;
    };

/** One concept's mask at the image's own size: grey bytes, 255 = concept. */
export interface ImageMask {
  mask: Uint8Array;
  width: number;
  height: number;
  /** Mean of mask/255: the fraction of the image covered. */
  area: number;
}

export interface MaskReader {
  masksFor(item: DatasetItem, index: number): Promise<Map<string, ImageMask>>;
  /** Called once after every image: report what was never used (orphan files, annotations). */
  finish(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenedSource {
  /** e.g. 'segmentation:/abs/model.onnx threshold=0.5 minArea=0.01'. */
  describe: string;
  /** Every concept the source knows, in its own order. */
  concepts: string[];
  /** Changes whenever the source's files change (keys the cache). */
  fingerprint(): Promise<string>;
  /** The expensive part (sessions, per-image lookups), only when the cache misses. */
  open(wanted: string[], dataset: Dataset, skips: Skips, threads?: number): Promise<MaskReader>;
}

export async function openSource(source: MaskSource): Promise<OpenedSource> {
  if (source.kind === 'masks') return masksSource(resolve(source.dir));
  if (source.kind === 'coco') return cocoSource(resolve(source.file));
  if (source.kind === 'segmentation') return segmentationSource(source);
  throw new RuleditError(
    'bad-source',
    `unknown mask source ${JSON.stringify((source as { kind: unknown }).kind)}`,
  );
}

async function fileStamp(path: string): Promise<string> {
  const s = await stat(path).catch(() => undefined);
  return `${path}\0${s?.size}\0${s?.mtimeMs}`;
}

async function masksSource(dir: string): Promise<OpenedSource> {
  const concepts = await maskConcepts(dir);
  return {
    describe: `masks:${dir}`,
    concepts,
    async fingerprint() {
      const parts: string[] = [];
      for (const c of concepts)
        for (const f of await listMaskFiles(dir, c))
          parts.push(await fileStamp(join(dir, c, `${f}.png`)));
      return parts.join('\n');
    },
    async open(wanted, dataset, skips) {
      const repeated = repeatedStems(dataset.items.map((i) => i.file));
      const used = new Map(wanted.map((c) => [c, new Set<string>()]));
      return {
        async masksFor(item) {
          const out = new Map<string, ImageMask>();
          let size: { width: number; height: number } | undefined;
          for (const concept of wanted) {
            const found = findMaskFile(dir, concept, dataset.root, item.file, repeated);
            if (found.kind === 'none') continue;
            if (found.kind === 'ambiguous') {
              skips.add(
                `several images share the file stem, so ${concept}/<stem>.png is ambiguous: ` +
                  `put the mask at ${concept}/<sub/folder/stem>.png`,
                relative(dataset.root, item.file),
              );
              continue;
            }
            used.get(concept)!.add(found.path);
            size ??= await uprightSize(item.file);
            const m = await readMaskAtImage(found.path, size.width, size.height);
            if (!m) {
              skips.add('mask file is all black (no concept pixel)', found.path);
              continue;
            }
            out.set(concept, fromFloat(m, size.width, size.height));
          }
          return out;
        },
        async finish() {
          for (const concept of wanted)
            for (const f of await listMaskFiles(dir, concept)) {
              const path = join(dir, concept, `${f}.png`);
              if (!used.get(concept)!.has(path))
                skips.add('mask file matches no image of the data set', path);
            }
        },
        close: async () => {},
      };
    },
  };
}

async function cocoSource(file: string): Promise<OpenedSource> {
  const coco = await loadCoco(file);
  return {
    describe: `coco:${file}`,
    concepts: coco.categories.map((c) => c.name),
    fingerprint: () => fileStamp(file),
    async open(wanted, dataset, skips) {
      const ids = categoryIds(coco, wanted);
      const conceptOf = new Map([...ids].map(([name, id]) => [id, name]));
      // COCO names files relative to its image folder; match the data set's relative path, else a
      // unique base name (a data set may be a flat copy of the images).
      const index = new Map(dataset.items.map((it, i) => [it.file, i]));
      const byBase = new Map<string, number[]>();
      dataset.items.forEach((it, i) =>
        byBase.set(basename(it.file), [...(byBase.get(basename(it.file)) ?? []), i]),
      );
      const itemOf = (fileName: string): number | undefined => {
        const exact = index.get(resolve(dataset.root, fileName.split('/').join(sep)));
        if (exact !== undefined) return exact;
        const same = byBase.get(basename(fileName));
        return same?.length === 1 ? same[0] : undefined;
      };
      const perItem = new Map<number, CocoAnnotation[]>();
      for (const a of coco.annotations) {
        if (!conceptOf.has(a.category_id)) continue;
        const image = coco.images.get(a.image_id);
        if (!image) {
          skips.add(
            `annotation's image_id has no entry in the file's 'images'`,
            `annotation ${a.id ?? '?'} (image_id ${a.image_id})`,
          );
          continue;
        }
        const i = itemOf(image.file_name);
        if (i === undefined) {
          skips.add(`annotation's image file is not in the data set folder`, image.file_name);
          continue;
        }
        perItem.set(i, [...(perItem.get(i) ?? []), a]);
      }
      return {
        async masksFor(item, i) {
          const out = new Map<string, ImageMask>();
          const anns = perItem.get(i);
          if (!anns) return out;
          const image = coco.images.get(anns[0].image_id)!;
          const size = await uprightSize(item.file);
          const h = image.height ?? size.height;
          const w = image.width ?? size.width;
          const unions = new Map<string, Uint8Array>();
          for (const a of anns) {
            const concept = conceptOf.get(a.category_id)!;
            const m = segmentationMask(a.segmentation, h, w);
            const u = unions.get(concept);
            if (!u) unions.set(concept, m);
            else for (let p = 0; p < u.length; p++) u[p] |= m[p];
          }
          for (const [concept, u] of unions) {
            if (!u.some((v) => v)) {
              skips.add(`${concept}: the image's annotations enclose no pixel`, image.file_name);
              continue;
            }
            out.set(concept, await fitCoco(u, w, h, size, image.file_name));
          }
          return out;
        },
        finish: async () => {},
        close: async () => {},
      };
    },
  };
}

/** A COCO mask (0/1) at the file's stated size, brought to the image file's actual size. */
async function fitCoco(
  m: Uint8Array,
  w: number,
  h: number,
  size: { width: number; height: number },
  where: string,
): Promise<ImageMask> {
  const grey = Uint8Array.from(m, (v) => v * 255);
  if (w === size.width && h === size.height) return fromBytes(grey, w, h);
  // Same aspect ratio rules (and error) as any mask file: the image may be a resized copy.
  const png = await sharp(grey, { raw: { width: w, height: h, channels: 1 } })
    .toColourspace('b-w')
    .png()
    .toBuffer();
  const f = await loadMask(png, size.width, size.height, {
    size: [size.height, size.width],
    cropFraction: 1,
  }).catch((e: unknown) => {
    if (e instanceof RuleditError)
      throw new RuleditError(
        e.code,
        `COCO entry for ${where}: ${e.message.replace(/^mask is/, 'the COCO mask is')}`,
      );
    throw e;
  });
  return fromFloat(f, size.width, size.height);
}

async function segmentationSource(
  source: Extract<MaskSource, { kind: 'segmentation' }>,
): Promise<OpenedSource> {
  const models = (typeof source.model === 'string' ? [source.model] : source.model).map((m) =>
    resolve(m),
  );
  if (!models.length) throw new RuleditError('bad-source', 'no segmentation model given');
  const { threshold, minArea } = segmentLimits(source);
  const assets = await Promise.all(models.map((m) => segmentationAssets(m)));
  const known = assets.map(({ labels }) => labels.filter((l) => !isBackground(l)));
  return {
    describe: `segmentation:${models.join('+')} threshold=${threshold} minArea=${minArea}`,
    concepts: [...new Set(known.flat())],
    fingerprint: async () => {
      const stamps = models.map(async (model, k) =>
        [
          await fileStamp(model),
          await fileStamp(join(model, '..', 'preprocess.json')),
          await fileStamp(assets[k].labelsPath),
        ].join('\n'),
      );
      return (await Promise.all(stamps)).join('\n');
    },
    async open(wanted, _dataset, _skips, threads) {
      const segmenters: Segmenter[] = [];
      try {
        for (const model of models)
          segmenters.push(await loadSegmenter(model, { threshold, minArea, threads }));
      } catch (e) {
        await Promise.all(segmenters.map((s) => s.release()));
        throw e;
      }
      return {
        async masksFor(item) {
          const out = new Map<string, ImageMask>();
          for (const [k, seg] of segmenters.entries()) {
            const asked = wanted.filter((c) => known[k].includes(c));
            if (!asked.length) continue;
            const { width, height, masks } = await seg.segment(item.file, asked);
            for (const [c, m] of masks) {
              const before = out.get(c);
              if (!before) out.set(c, { mask: m.mask, width, height, area: m.area });
              else {
                const union = Uint8Array.from(before.mask, (v, p) => Math.max(v, m.mask[p]));
                out.set(c, fromBytes(union, width, height));
              }
            }
          }
          return out;
        },
        finish: async () => {},
        close: async () => {
          await Promise.all(segmenters.map((s) => s.release()));
        },
      };
    },
  };
}

function fromFloat(m: Float32Array, width: number, height: number): ImageMask {
  return fromBytes(
    Uint8Array.from(m, (v) => Math.round(v * 255)),
    width,
    height,
  );
}

function fromBytes(mask: Uint8Array, width: number, height: number): ImageMask {
  let sum = 0;
  for (let p = 0; p < mask.length; p++) sum += mask[p];
  return { mask, width, height, area: sum / 255 / mask.length };
}
