import { statSync } from 'node:fs';
import { matchChanges, matchPanel } from './match.js';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { textureImage } from '../concepts/transform.js';
import { METHOD_NAMES, METHODS, type OptionSpec } from '../edit/methods.js';
import { RuleditError } from '../errors.js';
import { STYLE_IMAGES, STYLES, styleTexture, type StyleName } from '../synth/styles.js';
import { listImages, resolveInside } from './files.js';
import { makeExemplar, pngDataUrl, pngUrl, toModelImage, top5 } from './pixels.js';
import { prepareEdit, type ExemplarBody } from './prepare.js';
import { type StoredImage, type Workbench } from './workbench.js';
import type { LoadedImage, PreviewResult, ServerInfo } from './wire.js';
import { rawPng } from '../data/png.js';

// JSON schemas: fastify validates every body before a handler runs (400 with the failing path).

/**
 * The options of the registry's methods (edit/methods.ts), as a request may set them: for each
 * method its own, bounded as it declares them ({ "rewrite": { "rank": 2 }, "retrain-last": {...} }).
 */
function settingsSchema() {
  const option = (o: OptionSpec) =>
    o.choices
      ? { enum: o.choices }
      : o.type === 'string'
        ? { type: 'string', maxLength: 200 }
        : {
            type: o.type,
            ...(o.min !== undefined ? { minimum: o.min } : {}),
            ...(o.above !== undefined ? { exclusiveMinimum: o.above } : {}),
            ...(o.max !== undefined ? { maximum: o.max } : {}),
          };
  const methods = METHOD_NAMES.map((m) => {
    const options = Object.entries(METHODS[m].options as Record<string, OptionSpec>);
    const properties = Object.fromEntries(options.map(([key, o]) => [key, option(o)]));
    return [m, { type: 'object', additionalProperties: false, properties }];
  });
  return { type: 'object', additionalProperties: false, properties: Object.fromEntries(methods) };
}

const replacementSchema = {
  type: 'object',
  oneOf: [
    {
      required: ['style'],
      properties: {
        style: { enum: [...STYLES] },
        variant: { type: 'integer', minimum: 0, maximum: STYLE_IMAGES - 1 },
      },
    },
    { required: ['texture'], properties: { texture: { type: 'string', maxLength: 64 } } },
    { required: ['fill'], properties: { fill: { type: 'string', maxLength: 32 } } },
  ],
} as const;

const exemplarSchema = {
  type: 'object',
  required: ['image', 'mask', 'replacement'],
  additionalProperties: false,
  properties: {
    image: { type: 'string', maxLength: 64 },
    mask: {
      type: 'array',
      items: { type: 'number', minimum: 0, maximum: 1 },
      maxItems: 1024 * 1024,
    },
    replacement: replacementSchema,
    method: { enum: METHOD_NAMES },
    label: { type: 'integer', minimum: 0 },
    settings: settingsSchema(),
  },
} as const;

const imageSchema = {
  type: 'object',
  additionalProperties: false,
  oneOf: [{ required: ['upload'] }, { required: ['folder', 'path'] }, { required: ['sample'] }],
  properties: {
    upload: { type: 'string', minLength: 1 },
    name: { type: 'string', maxLength: 200 },
    folder: { type: 'integer', minimum: 0 },
    path: { type: 'string', minLength: 1, maxLength: 1000 },
    sample: { type: 'string', maxLength: 64 },
  },
} as const;

/** Every route of the editor's API; each group below is one kind of request. */
export function registerRoutes(app: FastifyInstance, wb: Workbench): void {
  inputRoutes(app, wb);
  editRoutes(app, wb);
  jobRoutes(app, wb);
  downloadRoutes(app, wb);
}

/** The model, the data folders, the style images, and the images and textures the page uploads. */
function inputRoutes(app: FastifyInstance, wb: Workbench): void {
  app.get('/api/health', async () => ({ ok: true, time: Date.now() }));

  app.get('/api/info', async (): Promise<ServerInfo> => ({
    model: wb.options.modelPath,
    builtin: wb.options.builtin,
    size: wb.spec.size,
    labels: wb.labels ?? [],
    blocks: await wb.blocks(),
    styles: STYLES,
    styleImages: STYLE_IMAGES,
    samples: wb.samples.map((s) => ({ id: s.id, caption: s.caption })),
    data: wb.options.data.map((d, i) => ({ folder: i, name: basename(d) })),
    history: wb.history(),
    methods: METHODS,
  }));

  app.get<{ Querystring: { folder?: string } }>('/api/files', async (req) => {
    const folder = Number(req.query.folder ?? 0);
    const root = resolveInside(wb.options.data, folder, '.');
    return { folder, files: await listImages(root) };
  });

  app.get<{ Params: { style: string; variant: string } }>(
    '/api/styles/:style/:variant',
    async (req, reply) => {
      const style = req.params.style as StyleName;
      const variant = Number(req.params.variant);
      if (!STYLES.includes(style) || !(variant >= 0 && variant < STYLE_IMAGES))
        throw new RuleditError('not-found', `no style image ${style}/${req.params.variant}`);
      reply.type('image/png');
      return rawPng(styleTexture(style, variant, 96), 96, 96);
    },
  );

  app.post<{
    Body: { upload?: string; name?: string; folder?: number; path?: string; sample?: string };
  }>('/api/images', { schema: { body: imageSchema } }, async (req): Promise<LoadedImage> => {
    const b = req.body;
    let image: StoredImage;
    if (b.sample) {
      const s = wb.samples.find((x) => x.id === b.sample);
      if (!s) throw new RuleditError('not-found', `no sample ${b.sample}`);
      const [h, w] = wb.spec.size;
      image = await toModelImage(await rawPng(s.rgb, 64, 64), s.caption, wb.spec);
      image.masks = Object.fromEntries(
        Object.entries(s.masks).map(([k, m]) => [k, Float32Array.from(m!, (v) => v / 255)]),
      );
      if (w !== 64 || h !== 64) image.masks = undefined;
    } else if (b.upload) {
      image = await toModelImage(decodeBase64(b.upload), b.name ?? 'upload', wb.spec);
    } else {
      const file = resolveInside(wb.options.data, b.folder!, b.path!);
      if (!statSync(file).isFile())
        throw new RuleditError(
          'bad-request',
          `${b.path} in data folder #${b.folder} is not a file`,
        );
      image = await toModelImage(await readFile(file), b.path!, wb.spec);
    }
    const id = wb.remember(wb.images, 'img', image);
    const x = makeExemplar(
      image,
      new Float32Array(image.width * image.height),
      Float32Array.from(image.rgb),
      wb.spec,
      '',
    ).original;
    const [predictions] = await top5(wb.model, [x], wb.spec, wb.labels);
    return {
      id,
      name: image.name,
      width: image.width,
      height: image.height,
      png: await pngDataUrl(image.rgb, image.width, image.height),
      masks: Object.fromEntries(
        Object.entries(image.masks ?? {}).map(([k, m]) => [k, Array.from(m)]),
      ),
      top5: predictions,
    };
  });

  app.post<{ Body: { upload: string } }>(
    '/api/textures',
    {
      schema: {
        body: {
          type: 'object',
          required: ['upload'],
          additionalProperties: false,
          properties: { upload: { type: 'string', minLength: 1 } },
        },
      },
    },
    async (req) => {
      const bytes = decodeBase64(req.body.upload);
      // Decoding now turns a corrupt upload into an error here, not inside a job.
      await textureImage(bytes, 8, 8);
      const id = wb.remember(wb.textures, 'tex', bytes);
      return { id };
    },
  );
}

/** What the exemplar does: the preview, the context match, an edit, a comparison, undo. */
function editRoutes(app: FastifyInstance, wb: Workbench): void {
  app.post<{ Body: ExemplarBody }>(
    '/api/preview',
    { schema: { body: exemplarSchema } },
    async (req): Promise<PreviewResult> => {
      const p = await prepareEdit(wb, req.body);
      const ex = p.exemplars;
      const [x, ...xp] = await top5(
        wb.model,
        [ex[0].original, ...ex.map((e) => e.transformed)],
        wb.spec,
        wb.labels,
      );
      return {
        png: pngUrl(p.pictures.transformed[0]),
        top5: { x, xPrime: xp[0] },
        // Every exemplar the edit will use (one per style image), with the model's top-1 on it.
        exemplars: p.pictures.transformed.map((png, i) => ({ png: pngUrl(png), top1: xp[i][0] })),
      };
    },
  );

  app.post<{ Body: ExemplarBody }>(
    '/api/match',
    { schema: { body: exemplarSchema } },
    async (req) => matchPanel(wb, await prepareEdit(wb, req.body)),
  );

  app.get('/api/match/changes', async () => matchChanges(wb));

  app.post<{ Body: ExemplarBody }>(
    '/api/edit',
    { schema: { body: exemplarSchema } },
    async (req, reply) => {
      const job = wb.submitEdit(await prepareEdit(wb, req.body));
      return reply.code(202).send(job);
    },
  );

  app.post<{ Body: ExemplarBody }>(
    '/api/compare',
    { schema: { body: exemplarSchema } },
    async (req, reply) => {
      const job = wb.submitCompare(await prepareEdit(wb, req.body));
      return reply.code(202).send(job);
    },
  );

  app.post('/api/revert', async (_req, reply) => reply.code(202).send(wb.submitRevert()));
}

/** The history and the job queue, with its server-sent events. */
function jobRoutes(app: FastifyInstance, wb: Workbench): void {
  app.get('/api/history', async () => ({ history: wb.history() }));
  app.get('/api/jobs', async () => ({ jobs: wb.jobs.list() }));
  app.get<{ Params: { id: string } }>('/api/jobs/:id', async (req) => wb.jobs.get(req.params.id));
  app.post<{ Params: { id: string } }>('/api/jobs/:id/cancel', async (req) =>
    wb.jobs.cancel(req.params.id),
  );

  // Server-sent events: every change of every job, starting with the current records.
  app.get('/api/events', (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      connection: 'keep-alive',
    });
    const send = (job: unknown) => res.write(`data: ${JSON.stringify(job)}\n\n`);
    for (const job of wb.jobs.list()) send(job);
    wb.jobs.on('update', send);
    const ping = setInterval(() => res.write(': ping\n\n'), 15000);
    req.raw.on('close', () => {
      clearInterval(ping);
      wb.jobs.off('update', send);
    });
  });
}

/** The edited model and the report, to download. */
function downloadRoutes(app: FastifyInstance, wb: Workbench): void {
  app.get('/api/model.onnx', async (_req, reply) => {
    reply
      .header('content-disposition', 'attachment; filename="edited.onnx"')
      .type('application/octet-stream');
    return wb.modelBytes();
  });

  app.get('/api/report.html', async (_req, reply) => {
    if (!wb.report) throw new RuleditError('not-found', 'no report yet: run an edit first');
    reply.header('content-disposition', 'attachment; filename="report.html"').type('text/html');
    return wb.report;
  });
}

/** A base64 string or data URL. */
function decodeBase64(text: string): Buffer {
  const comma = text.startsWith('data:') ? text.indexOf(',') : -1;
  const bytes = Buffer.from(text.slice(comma + 1), 'base64');
  if (!bytes.length) throw new RuleditError('bad-image', 'the upload is empty or not base64');
  return bytes;
}
