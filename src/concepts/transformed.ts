import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { cacheDir } from '../io/cache.js';
import { RuleditError } from '../errors.js';
import { checkFile, writeChecked } from '../io/checked-file.js';
import { fileDigest } from '../io/digest.js';
import { transformImage, type Transformation } from './transform-image.js';

/**
 * How a style image is applied to a concept's region: a Transformation without its image, so one
 * setting covers every image of a style (docs/method.md section 9).
 */
export type StyleTransform =
  | { kind: 'texture'; mode?: 'tile' | 'stretch'; jitter?: boolean }
  | { kind: 'shade' }
  | { kind: 'stylize'; model: string; blend?: number };

export function withStyleImage(t: StyleTransform, image: string): Transformation {
  switch (t.kind) {
    case 'texture':
      return { kind: 'texture', image, mode: t.mode ?? 'stretch', jitter: t.jitter ?? false };
    case 'shade':
      return { kind: 'shade', image };
    case 'stylize':
      return { kind: 'stylize', model: t.model, image, blend: t.blend ?? 0.2 };
    default:
      throw new RuleditError(
        'bad-transformation',
        `unknown style transformation ${JSON.stringify((t as { kind: unknown }).kind)}: use texture, shade or stylize`,
      );
  }
}

/** 'texture' | 'tile' | 'shade' | 'stylize' as the CLI spells it. */
export function parseStyleTransform(name: string, stylizeModel?: string): StyleTransform {
  if (name === 'texture') return { kind: 'texture', mode: 'stretch' };
  if (name === 'tile') return { kind: 'texture', mode: 'tile' };
  if (name === 'shade') return { kind: 'shade' };
  if (name === 'stylize') {
    if (!stylizeModel)
      throw new RuleditError('bad-option', '--transform stylize needs --stylize-model MODEL');
    return { kind: 'stylize', model: stylizeModel };
  }
  throw new RuleditError(
    'bad-option',
    `unknown --transform '${name}': use texture, tile, shade or stylize`,
  );
}

/** One image whose concept region gets one style image. */
export interface Variant {
  image: string;
  mask: string;
  style: string;
}

export interface TransformedOptions {
  cacheDir?: string;
  /** Seed of the texture jitter; ignored (and not part of the key) without jitter. */
  seed?: number;
  /** Transformations in flight (sharp decodes on libuv threads, compose runs in JS). */
  concurrency?: number;
  /** Make every transformed image again (once per process), ignoring the cache. */
  refresh?: boolean;
  /** Told when a cached image fails its checksum and is made again. */
  onWarning?: (message: string) => void;
  onProgress?: (done: number, total: number) => void;
}

/**
 * The transformed copy of each variant as a PNG file in the cache (transformed/<hash>.png, keyed
 * by the contents of image, mask and style image, the transformation and its seed), made on first
 * use: test sets list paths, never copies, and every later stage reads plain image files.
 */
export async function transformedFiles(
  variants: Variant[],
  t: StyleTransform,
  options: TransformedOptions = {},
): Promise<string[]> {
  const folder = join(cacheDir(options.cacheDir), 'transformed');
  const jitter = t.kind === 'texture' && t.jitter === true;
  const seed = jitter ? (options.seed ?? 0) : 0;
  const out: string[] = new Array(variants.length);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < variants.length) {
      const i = next++;
      const v = variants[i];
      const key = createHash('sha256');
      key.update(`transformed-v1\0${JSON.stringify(t)}\0${seed}\0`);
      for (const f of [v.image, v.mask, v.style]) key.update(`${await contentHash(f)}\0`);
      const file = join(folder, `${key.digest('hex').slice(0, 32)}.png`);
      const state = options.refresh && !remade.has(file) ? 'refresh' : await checkFile(file);
      if (state !== 'ok') {
        if (state === 'damaged')
          options.onWarning?.(
            `the cached transformed image ${file} does not match its checksum (damaged or edited): made again`,
          );
        const png = await transformImage(v.image, v.mask, withStyleImage(t, v.style), seed).catch(
          (e: unknown) => {
            if (e instanceof RuleditError)
              throw new RuleditError(e.code, `${v.image} (mask ${v.mask}): ${e.message}`);
            throw e;
          },
        );
        await writeChecked(file, png);
        remade.add(file);
      }
      out[i] = file;
      options.onProgress?.(++done, variants.length);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 2) }, () => worker()));
  return out;
}

/** Files made again in this process under `refresh`: a refresh remakes each once, not per use. */
const remade = new Set<string>();

async function contentHash(file: string): Promise<string> {
  return fileDigest(file).catch(() => {
    throw new RuleditError('not-found', `file not found: ${file}`);
  });
}
