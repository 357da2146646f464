import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { classifierBytes, loadClassifier, type Classifier } from '../classifier.js';
import type { Exemplar } from '../concepts/exemplar.js';
import type { DatasetItem } from '../data/dataset.js';
import type { PreprocessSpec } from '../data/preprocess.js';
import { activeEdits, revertLast, withoutUndoData, withUndoDataOf } from '../edit/record.js';
import { autoLayer } from '../edit/layer.js';
import { METHODS } from '../edit/methods.js';
import { isRuleditError, RuleditError } from '../errors.js';
import { listBlocks } from '../onnx/blocks.js';
import { readHistory } from '../onnx/history.js';
import { modelFromProto, parseModel, serializeModel, type OnnxModel } from '../onnx/model.js';
import type { ReportData } from '../report/types.js';
import { writeReport } from '../report/write.js';
import { tensorShapes } from '../runtime/capture.js';
import { batchDims } from '../data/preprocess.js';
import type { StyleName } from '../synth/styles.js';
import { JobQueue } from './jobs.js';
import type { ModelImage } from './pixels.js';
import { sceneSources, type Sample, type TestSets } from './scenes.js';
import { folderSources, type TestSources } from './sources.js';
import type { EditOutcome, EditParams, EditTask } from './tasks.js';
import type { BlockRow, CompareRow, HistoryRow } from './wire.js';
import { inWorker } from './thread.js';
import { rawPng } from '../data/png.js';

export interface WorkbenchOptions {
  modelPath: string;
  builtin: boolean;
  /** Folders the page may read images from (absolute). */
  data: string[];
}

export interface StoredImage extends ModelImage {
  masks?: Record<string, Float32Array>;
}

/** The exemplars of one request (one per style image), kept with their pictures for the report. */
export interface PreparedEdit {
  exemplars: Exemplar[];
  /** PNGs of x, the mask, and each exemplar's x'. */
  pictures: { original: Buffer; mask: Buffer; transformed: Buffer[] };
  params: EditParams;
  caption: string;
  /** The built-in style chosen: the built-in test scenes are covered with held-out images of it. */
  style?: StyleName;
}

/**
 * The server's state: the model being edited (in memory; the input file is never written), the
 * images and textures the page uploaded, and the job queue that every change goes through.
 */
export class Workbench {
  readonly jobs = new JobQueue();
  readonly images = new Map<string, StoredImage>();
  readonly textures = new Map<string, Buffer>();
  readonly samples: Sample[];
  model: OnnxModel;
  /** The model before the most recent edit (compare runs the baselines from it). */
  private base?: OnnxModel;
  private readonly tests = new Map<string, Promise<TestSets>>();
  private statsItems?: Promise<DatasetItem[]>;
  private outDir?: string;
  report?: string;
  /** The images the context-match panel last showed, with the model's top-1 then. */
  matched?: { files: string[]; before: string[] };
  private nextId = 1;

  private constructor(
    readonly options: WorkbenchOptions,
    readonly classifier: Classifier,
    readonly sources: TestSources,
  ) {
    this.model = classifier.model;
    this.samples = sources.samples;
  }

  static async open(options: WorkbenchOptions): Promise<Workbench> {
    const sources = options.builtin ? sceneSources() : folderSources(options.data);
    return new Workbench(options, await loadClassifier(options.modelPath), sources);
  }

  id(prefix: string): string {
    return `${prefix}-${this.nextId++}`;
  }

  /** Keep an upload under a new id; the oldest go once there are many (a long session's memory). */
  remember<T>(store: Map<string, T>, prefix: string, value: T): string {
    const id = this.id(prefix);
    store.set(id, value);
    for (const old of store.keys()) {
      if (store.size <= 50) break;
      store.delete(old);
    }
    return id;
  }

  get spec(): PreprocessSpec {
    return this.classifier.spec;
  }

  get labels(): string[] | undefined {
    return this.classifier.labels;
  }

  /**
   * The block table of `ruledit inspect`, with the spatial size of each value and key (the grid
   * the mask is brought to), and which block `auto` edits: one run on zeros gives them all.
   */
  async blocks(): Promise<BlockRow[]> {
    const blocks = listBlocks(this.model.proto.graph!);
    const shapes = await tensorShapes(
      this.model,
      [...new Set(blocks.flatMap((b) => [b.value, b.key]))],
      batchDims(this.spec, 1),
    );
    const spatial = (t: string) => (shapes[t] ?? []).slice(2);
    let auto: string | undefined;
    try {
      auto = autoLayer(blocks, (b) => spatial(b.value)).name;
    } catch {
      auto = undefined; // no spatial block: the page asks for one by name
    }
    return blocks.map((b) => ({
      index: b.index,
      name: b.name,
      chain: b.chain.join(' > '),
      weight: b.weightShape.join('x'),
      spatial: spatial(b.value).join('x') || '-',
      keyGrid: spatial(b.key).join('x') || '1x1',
      auto: b.name === auto,
      editable: b.editable,
      reason: b.reason,
    }));
  }

  history(): HistoryRow[] {
    const history = readHistory(this.model);
    const active = new Set(activeEdits(history));
    return history.map((r, i) => ({
      index: i,
      method: r.method,
      block: r.block as string | undefined,
      time: r.time,
      active: active.has(i),
      reverts: r.reverts as number | undefined,
    }));
  }

  /** The test sets of a style (see TestSources), made once. */
  testSets(style: StyleName = 'snow'): Promise<TestSets> {
    const key = this.sources.styled ? style : '';
    let tests = this.tests.get(key);
    if (!tests) {
      this.tests.set(key, (tests = this.sources.testSets(style)));
      tests.catch(() => this.tests.delete(key));
    }
    return tests;
  }

  /** Reference images for the key statistics and the guard, read once. */
  statsData(): Promise<DatasetItem[]> {
    this.statsItems ??= this.sources.reference();
    this.statsItems.catch(() => (this.statsItems = undefined));
    return this.statsItems;
  }

  /** Queue an edit: it builds on whatever model is current when it starts. */
  submitEdit(prepared: PreparedEdit) {
    return this.jobs.submit(prepared.params.method, async (ctx) => {
      ctx.progress(0.01, 'preparing reference images and test folders');
      const task = await this.task('edit', this.model, prepared);
      ctx.checkpoint();
      const out = await inWorker<EditOutcome>(task, ctx).catch(explainRejection);
      ctx.checkpoint();
      this.base = this.model;
      // The worker saw no undo copies of the earlier edits: they come back from this side.
      this.model = withUndoDataOf(this.model, modelFromProto(parseModel(out.modelBytes)));
      // The new record's copy of the old weights stays in the model; the page needs none of it.
      const { modelBytes: _, record: __, ...rest } = out;
      await this.writeReport(prepared, rest, undefined);
      return { ...rest, history: this.history() };
    });
  }

  submitCompare(prepared: PreparedEdit) {
    return this.jobs.submit('compare', async (ctx) => {
      ctx.progress(0.01, 'preparing');
      const task = await this.task('compare', this.base ?? this.model, prepared);
      const out = await inWorker<{ rows: CompareRow[]; label: string }>(task, ctx);
      await this.writeReport(prepared, undefined, out);
      return out;
    });
  }

  submitRevert() {
    return this.jobs.submit('revert', async () => {
      const { model, index, reverted } = revertLast(this.model);
      this.model = modelFromProto(model.proto);
      this.base = undefined;
      return { reverted: index, block: reverted.block, history: this.history() };
    });
  }

  private async task(kind: EditTask['kind'], model: OnnxModel, p: PreparedEdit): Promise<EditTask> {
    return {
      kind,
      modelBytes: serializeModel(withoutUndoData(model).proto),
      spec: this.spec,
      labels: this.labels,
      exemplars: p.exemplars,
      params: p.params,
      statsData:
        METHODS[p.params.method].guarded || kind === 'compare' ? await this.statsData() : [],
      tests: await this.testSets(p.style),
    };
  }

  /** The current model with its spec and labels embedded, as bytes to download. */
  modelBytes(): Buffer {
    const bytes = classifierBytes({ ...this.classifier, model: this.model });
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private async writeReport(
    p: PreparedEdit,
    edit: Omit<EditOutcome, 'modelBytes' | 'record'> | undefined,
    compare: { rows: CompareRow[]; label: string } | undefined,
  ): Promise<void> {
    const fmt = (v: number) => (Number.isNaN(v) ? 'n/a' : v.toFixed(1));
    const data: ReportData = {
      title: `ruledit web editor: ${p.caption}`,
      summary: [`model ${this.options.modelPath}`],
      examples: [
        {
          caption: p.caption,
          original: p.pictures.original,
          mask: p.pictures.mask,
          transformed: p.pictures.transformed[0],
          before: edit
            ? `${edit.xPrime.before[0].label} ${edit.xPrime.before[0].p.toFixed(0)}%`
            : undefined,
          after: edit
            ? `${edit.xPrime.after[0].label} ${edit.xPrime.after[0].p.toFixed(0)}%`
            : undefined,
        },
      ],
      tables: [],
    };
    if (edit) {
      const e = edit.evaluation;
      data.summary!.push(
        `${p.params.method} of ${edit.block} with ${p.exemplars.length} exemplar(s): test accuracy ${fmt(e.testBefore)}% -> ${fmt(e.testAfter)}% (${e.testTitle}); clean accuracy ${fmt(e.cleanBefore)}% -> ${fmt(e.cleanAfter)}% (drop ${fmt(e.cleanDrop)} points)`,
        edit.guardText,
      );
      data.tables!.push({
        title: `Per-class top-1 (%) on ${e.testTitle}`,
        columns: ['class', 'images', 'before (%)', 'after (%)'],
        rows: e.perClass.map((c) => [c.name, c.n, fmt(c.before), fmt(c.after)]),
        chart: { label: 'class', values: ['before (%)', 'after (%)'] },
      });
    }
    if (compare) {
      data.tables!.push({
        title: `Rewrite vs fine-tuning (fine-tuning label: ${compare.label})`,
        columns: [
          'method',
          'block',
          "x' top-1",
          'test after (%)',
          'clean after (%)',
          'clean drop',
          'fixed',
          'broken',
          'strength',
          'guard flips (%)',
          'seconds',
        ],
        rows: compare.rows.map((r) => [
          r.method,
          r.block,
          r.rejected ? 'rejected by the safety guard' : r.xPrimeTop1,
          fmt(r.testAfter),
          fmt(r.cleanAfter),
          fmt(r.cleanDrop),
          r.fixedCount,
          r.brokenCount,
          r.strength?.toFixed(3) ?? '-',
          r.flipRate?.toFixed(2) ?? '-',
          r.seconds.toFixed(1),
        ]),
      });
    }
    this.outDir ??= await mkdtemp(join(tmpdir(), 'ruledit-serve-report-'));
    const written = await writeReport(data, this.outDir, { force: true });
    this.report = await readFile(written.html, 'utf8');
  }
}

/**
 * A rewrite the guard refused leaves the model as it was (the job fails before the model is
 * replaced); say so, in the page's words rather than the command line's.
 */
export function explainRejection(e: unknown): never {
  if (!(isRuleditError(e) && e.code === 'guard-rejected')) throw e;
  const message = e.message
    .replace('nothing was written', 'the model is unchanged')
    .replace('`layer`', 'block')
    .replace('`maxDrop`', 'drop budget');
  throw new RuleditError('guard-rejected', `the safety guard rejected the edit: ${message}`);
}

/** PNG of a mask (h*w in [0,1]) for reports. */
export function maskPng(mask: Float32Array, w: number, h: number): Promise<Buffer> {
  return rawPng(
    mask.map((v) => v * 255),
    w,
    h,
    1,
  );
}
