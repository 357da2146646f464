import { RuleditError } from '../errors.js';
import { STYLE_IMAGES, STYLES, styleTexture, type StyleName } from '../synth/styles.js';
import { makeExemplar, transformPixels, type WebReplacement } from './pixels.js';
import type { EditParams } from './tasks.js';
import { maskPng, type PreparedEdit, type Workbench } from './workbench.js';
import { rawPng } from '../data/png.js';

/** An exemplar as the page posts it: an uploaded image, its painted mask, the new look. */
export interface ExemplarBody extends Partial<EditParams> {
  image: string;
  mask: number[];
  replacement: WebReplacement;
}

/** One texture a replacement stands for, with the id its exemplar's hash is made of. */
interface Look {
  texture: { fill: string } | { bytes: Buffer };
  id: string;
}

/**
 * The exemplars of a request: one per image of a built-in style (the user picks a style, not an
 * image, so what is particular to one texture averages out of the edit), else one.
 */
export async function prepareEdit(wb: Workbench, body: ExemplarBody): Promise<PreparedEdit> {
  const image = wb.images.get(body.image);
  if (!image) throw new RuleditError('not-found', `no image ${body.image}: load it again`);
  const { width: w, height: h } = image;
  if (body.mask.length !== w * h)
    throw new RuleditError(
      'bad-mask',
      `the mask has ${body.mask.length} values; the image is ${w}x${h} = ${w * h}`,
    );
  const mask = Float32Array.from(body.mask);
  if (!mask.some((v) => v > 0))
    throw new RuleditError('bad-mask', 'the mask is empty: paint the concept first');
  const params = editParams(body);
  if (params.label !== undefined && wb.labels && params.label >= wb.labels.length)
    throw new RuleditError('bad-label', `label must be below ${wb.labels.length}`);
  const chosen = await looks(wb, body.replacement);
  const exemplars = [];
  const transformed: Buffer[] = [];
  for (const look of chosen) {
    const x = await transformPixels(image, mask, look.texture);
    exemplars.push(makeExemplar(image, mask, x, wb.spec, look.id));
    transformed.push(await rawPng(x, w, h));
  }
  const r = body.replacement;
  return {
    exemplars,
    params,
    style: 'style' in r ? (r.style as StyleName) : undefined,
    caption: `${image.name}, ${caption(r, chosen.length)}`,
    pictures: {
      original: await rawPng(image.rgb, w, h),
      mask: await maskPng(mask, w, h),
      transformed,
    },
  };
}

function editParams(body: ExemplarBody): EditParams {
  return { method: body.method ?? 'rewrite', label: body.label, settings: body.settings ?? {} };
}

async function looks(wb: Workbench, r: WebReplacement): Promise<Look[]> {
  if ('fill' in r) return [{ texture: { fill: r.fill }, id: `fill:${r.fill}` }];
  if ('texture' in r) {
    const bytes = wb.textures.get(r.texture);
    if (!bytes) throw new RuleditError('not-found', `no texture ${r.texture}: upload it again`);
    return [{ texture: { bytes }, id: `texture:${r.texture}` }];
  }
  const style = r.style as StyleName;
  if (!STYLES.includes(style)) throw new RuleditError('not-found', `no style ${r.style}`);
  // A pinned variant reproduces the one-image edit of earlier versions (and the CLI's --texture).
  const images = r.variant === undefined ? [...Array(STYLE_IMAGES).keys()] : [r.variant];
  return Promise.all(
    images.map(async (k) => ({
      texture: { bytes: await rawPng(styleTexture(style, k, 128), 128, 128) },
      id: `style:${style}/${k}`,
    })),
  );
}

function caption(r: WebReplacement, n: number): string {
  if ('fill' in r) return `fill ${r.fill}`;
  if ('texture' in r) return `texture ${r.texture}`;
  return r.variant === undefined
    ? `style ${r.style} (${n} images)`
    : `style ${r.style}, image ${r.variant}`;
}
