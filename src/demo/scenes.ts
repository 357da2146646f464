import { sha256 } from '../io/digest.js';
import type { Exemplar } from '../concepts/exemplar.js';
import type { Classifier } from '../classifier.js';
import { edit, type EditOptions } from '../edit/edit.js';
import { DEFAULT_VARIANTS, jitteredPlacements } from '../concepts/exemplar.js';
import { textureImage } from '../concepts/transform.js';
import type { GuardReport } from '../edit/guard.js';
import { METHODS } from '../edit/methods.js';
import { changes, percent } from '../eval/changes.js';
import { chooseRewrite, rewriteGrid, type SelectionRow } from '../eval/select.js';
import { RuleditError } from '../errors.js';
import type { ReportExample } from '../report/types.js';
import { cleanAccuracyDrop, fourWay, type CaseImage } from '../eval/protocol.js';
import type { OnnxModel } from '../onnx/model.js';
import type { Ground } from '../synth/grounds.js';
import { predictScenes, sceneInput } from '../synth/predict.js';
import { referenceScenes } from '../synth/reference.js';
import { scenePng } from '../synth/write.js';
import { STYLE_IMAGES, STYLES, styleTexture, type StyleName } from '../synth/styles.js';
import {
  CLASSES,
  replaceConcept,
  scene,
  sceneMask,
  SEEDS,
  STICKER_CLASS,
  STICKER_WORD,
  type Scene,
} from '../synth/world.js';

/**
 * The built-in demo as plain data: the model fails when a concept takes a new look, one exemplar
 * rewrites one block, and every number is measured on scenes the model never saw.
 */
export interface SceneDemoOptions {
  /** Test scenes per class (default 40). */
  images?: number;
  /** The background concept that takes a new look (default road) and its new look (default snow). */
  concept?: Ground;
  style?: StyleName;
  /** Class of the exemplar scene (default car); fine-tuning pushes the exemplar toward it. */
  exemplarClass?: string;
  /** Block, rank and L1 penalty of the rewrite; chosen on validation scenes when not given. */
  layer?: string;
  rank?: number;
  penalty?: number;
  /** Weight of the reference images' own values in the rewrite's objective (default DEFAULT_PRESERVE). */
  preserve?: number;
  /** Placements of the exemplar's style image used as exemplars (default DEFAULT_VARIANTS). */
  variants?: number;
  /** Clean accuracy drop (points, on validation scenes) a setting may cost to be chosen (default 1). */
  maxDrop?: number;
  /** Fine-tuning steps and learning rate (both baselines; default DEMO_FINETUNE). */
  steps?: number;
  lr?: number;
  /** Skip the fine-tuning baselines. */
  finetune?: boolean;
  /** Skip the sticker scenario. */
  sticker?: boolean;
  threads?: number;
  onProgress?: (message: string) => void;
}

export interface ClassRow {
  name: string;
  images: number;
  /** Top-1 in percent: clean scenes on the concept, then the concept restyled, before and after each method. */
  clean: number;
  transformed: number;
  after: Record<string, number>;
}

export interface MethodSummary {
  method: string;
  block: string;
  seconds: number;
  /** Accuracy on the ordinary test scenes before and after, and the drop in points. */
  cleanBefore: number;
  cleanAfter: number;
  cleanDrop: number;
}

export interface SceneDemoResult {
  concept: Ground;
  style: StyleName;
  exemplarClass: string;
  /** Style image used by the exemplar; the test scenes use the held-out ones. */
  styleImages: { exemplar: number; test: number[] };
  classes: ClassRow[];
  methods: MethodSummary[];
  /** Per method: errors corrected on {exemplar's class, other classes} x {same, held-out style image}. */
  errorsCorrected: Record<string, ReturnType<typeof fourWay>>;
  /** Every setting tried on the validation scenes (the chosen one is the rewrite's block and rank). */
  selection: SettingRow[];
  /** Placements of the style image the rewrite's exemplars used. */
  variants: number;
  /** The safety guard's figures for the chosen rewrite. */
  guard?: GuardReport;
  sticker?: {
    word: string;
    target: string;
    /** Class of the exemplar scene the sticker fooled. */
    exemplarClass: string;
    images: number;
    /** Per other class: how many of its stickered scenes are called the sticker's class (%). */
    perClass: { name: string; calledBefore: number; calledAfter: number }[];
    selection: SettingRow[];
    /** Top-1 of the other classes' scenes with the sticker, and how many are called the sticker's class. */
    before: { accuracy: number; calledTarget: number };
    after: { accuracy: number; calledTarget: number };
    method: MethodSummary;
  };
  /** PNG bytes for reports: the exemplars and a few test scenes with their predictions. */
  pictures: ReportExample[];
}

const SIZE = 64;

/**
 * The demo's fine-tuning: the published 400 SGD steps, at lr 1e-2 rather than the published 1e-4
 * (methods.ts), which moves the built-in model's small weights too little to fix anything in 400
 * steps; a scenario setting, like the demo's scenes, not a default of the method.
 */
export const DEMO_FINETUNE = { steps: 400, lr: 1e-2 };

export async function runSceneDemo(
  classifier: Classifier,
  options: SceneDemoOptions,
): Promise<{ result: SceneDemoResult; edited: OnnxModel }> {
  const { model } = classifier;
  const say = options.onProgress ?? (() => {});
  const { n, maxDrop, concept, style, exemplarClass } = demoChoices(options);
  const threads = options.threads;
  const predict = (images: Uint8Array[], m: OnnxModel) =>
    predictScenes(m, images, SIZE, { threads });

  const { labels, ordinary, heldOut, exemplarStyle, test, nVal, val, valClean, valOrdinary } =
    demoScenes(n, concept, style);

  say(`predicting the test and validation scenes with the original model`);
  const cleanBefore = await predict(ordinary, model);
  const before = await predictSet(test, model, predict);
  const valBefore = await predictSet(val, model, predict);
  const valCleanBefore = await predict(valOrdinary, model);

  const ex = exemplarScene(exemplarClass, concept);
  const exemplarTransformed = replaceConcept(ex, concept, exemplarStyle);
  // Placements of the exemplar's style image only: the held-out style images stay unseen.
  const variants = options.variants ?? DEFAULT_VARIANTS;
  const exemplars = await Promise.all(
    (await placedTextures(exemplarStyle, variants)).map((t) =>
      sceneExemplar(ex.rgb, replaceConcept(ex, concept, t), sceneMask(ex, concept)),
    ),
  );
  const statsData = await referenceScenes(400);
  const target = (label: number) => label === exemplarClass;

  say(
    `choosing the block, rank and penalty on the validation scenes (${variants} placements of the style image, guard on, clean drop <= ${maxDrop} points)`,
  );
  const selection = await chooseSetting(
    classifier,
    exemplars,
    options,
    statsData,
    async (m) => {
      const after = await predictSet(val, m, predict);
      return {
        score: meanDefined(
          Object.values(fourWay(caseImages(val.labels, valBefore, after, target))).map(
            (e) => e.value,
          ),
        ),
        cleanDrop: cleanAccuracyDrop(valClean, valCleanBefore, await predict(valOrdinary, m)),
      };
    },
    [METHODS.rewrite.options.penalty.default],
  );

  const methods: MethodSummary[] = [];
  const afterBy: Record<string, number[]> = {};
  const errors: SceneDemoResult['errorsCorrected'] = {};
  const { layer, rank, penalty } = selection.chosen;
  const runs: [string, EditOptions][] = [
    [
      'rewrite',
      {
        method: 'rewrite',
        statsData,
        layer,
        rank,
        penalty,
        preserve: options.preserve,
      },
    ],
  ];
  let guard: GuardReport | undefined;
  if (options.finetune !== false) {
    for (const scope of ['local', 'global'] as const) {
      runs.push([
        `finetune-${scope}`,
        {
          method: `finetune-${scope}`,
          label: exemplarClass,
          layer,
          steps: options.steps ?? DEMO_FINETUNE.steps,
          lr: options.lr ?? DEMO_FINETUNE.lr,
        },
      ]);
    }
  }
  let edited: OnnxModel | undefined;
  for (const [name, opts] of runs) {
    say(
      `${name}: one exemplar (a ${CLASSES[exemplarClass]} scene, its ${concept} mask, ${concept} -> ${style})`,
    );
    const start = performance.now();
    const out = await edit(classifier, exemplars, opts);
    const seconds = (performance.now() - start) / 1000;
    edited ??= out.model;
    // The guarded run's figures (the rewrite's: the baselines here run without a guard).
    if ('guard' in out.report) guard ??= out.report.guard;
    const after = await predictSet(test, out.model, predict);
    afterBy[name] = after.heldout;
    // docs/method.md section 9 over the scenes on the concept: the exemplar's class is the target.
    errors[name] = fourWay(caseImages(test.labels, before, after, target));
    const cleanAfter = await predict(ordinary, out.model);
    methods.push(summary(name, out.report.block, seconds, labels, cleanBefore, cleanAfter));
  }
  const classes = classRows(labels, before, afterBy);

  const pictures = await demoPictures(
    { ex, exemplarTransformed, exemplarClass, concept, style },
    { labels, test, before: before.heldout, afterBy },
  );

  const result: SceneDemoResult = {
    concept,
    style,
    exemplarClass: CLASSES[exemplarClass],
    styleImages: { exemplar: 0, test: heldOut.map((_, k) => k + 1) },
    classes,
    methods,
    selection: selection.rows,
    errorsCorrected: errors,
    ...(guard ? { guard } : {}),
    variants,
    pictures,
  };
  if (options.sticker !== false) {
    say(`sticker: the word ${STICKER_WORD} pasted on other classes' scenes`);
    result.sticker = await stickerScenario(classifier, options, {
      statsData,
      n,
      nVal,
      ordinary,
      labels,
      cleanBefore,
      valOrdinary,
      valClean,
      valCleanBefore,
      pictures,
    });
  }
  return { result, edited: edited! };
}

/** The scenario the options ask for, checked: scenes per class, budget, concept, style, class. */
function demoChoices(options: SceneDemoOptions) {
  const n = options.images ?? 40;
  const maxDrop = options.maxDrop ?? 1;
  const concept = options.concept ?? 'road';
  const style = options.style ?? 'snow';
  if (!STYLES.includes(style)) {
    throw new RuleditError(
      'bad-style',
      `unknown style '${style}'; the world has ${STYLES.join(', ')}`,
    );
  }
  const exemplarClass = CLASSES.indexOf(
    (options.exemplarClass ?? 'car') as (typeof CLASSES)[number],
  );
  if (exemplarClass < 0) {
    throw new RuleditError(
      'bad-class',
      `unknown class '${options.exemplarClass}'; the classes are ${CLASSES.join(', ')}`,
    );
  }
  return { n, maxDrop, concept, style, exemplarClass };
}

/**
 * Test scenes: the ordinary ones (for clean accuracy), and every class placed on the concept,
 * then the concept restyled with the exemplar's style image and with the held-out ones. A
 * validation set drawn the same way (other seeds) chooses the block, rank and penalty.
 */
function demoScenes(n: number, concept: Ground, style: StyleName) {
  const labels = CLASSES.flatMap((_, c) => Array<number>(n).fill(c));
  const ordinary = labels.map((c, i) => scene(SEEDS.test + i, { label: c }).rgb);
  const heldOut = Array.from({ length: STYLE_IMAGES - 1 }, (_, k) =>
    styleTexture(style, k + 1, SIZE),
  );
  const exemplarStyle = styleTexture(style, 0, SIZE);
  const restyle = (base: number, count: number) => {
    const lab = CLASSES.flatMap((_, c) => Array<number>(count).fill(c));
    const on = lab.map((c, i) => scene(base + i, { label: c, ground: concept, sticker: null }));
    return {
      labels: lab,
      onConcept: on,
      heldout: on.map((s, i) => replaceConcept(s, concept, heldOut[i % heldOut.length])),
      same: on.map((s) => replaceConcept(s, concept, exemplarStyle)),
    };
  };
  const test = restyle(SEEDS.test + 100_000, n);
  // The same validation scenes whatever --images is, so a reduced run chooses as the full one does.
  const nVal = 20;
  const val = restyle(SEEDS.test + 300_000, nVal);
  const valClean = CLASSES.flatMap((_, c) => Array<number>(2 * nVal).fill(c));
  const valOrdinary = valClean.map((c, i) => scene(SEEDS.test + 400_000 + i, { label: c }).rgb);

  return { labels, ordinary, heldOut, exemplarStyle, test, nVal, val, valClean, valOrdinary };
}

/** Accuracy per class: clean scenes on the concept, restyled, and after each method. */
function classRows(
  labels: number[],
  before: SetPredictions,
  afterBy: Record<string, number[]>,
): ClassRow[] {
  return CLASSES.map((name, c) => {
    const idx = labels.flatMap((l, i) => (l === c ? [i] : []));
    const acc = (p: number[]) => changes(labels, p, p, idx).before;
    return {
      name,
      images: idx.length,
      clean: acc(before.onConcept),
      transformed: acc(before.heldout),
      after: Object.fromEntries(Object.entries(afterBy).map(([m, p]) => [m, acc(p)])),
    };
  });
}

/**
 * The report's pictures: the exemplar, then per method test scenes it fixed (other classes first)
 * and one it broke, each showing its prediction before and after that method.
 */
async function demoPictures(
  shown: {
    ex: Scene;
    exemplarTransformed: Uint8Array;
    exemplarClass: number;
    concept: Ground;
    style: StyleName;
  },
  scored: { labels: number[]; test: SceneSet; before: number[]; afterBy: Record<string, number[]> },
): Promise<ReportExample[]> {
  const { ex, exemplarTransformed, exemplarClass, concept, style } = shown;
  const { labels, test, afterBy } = scored;
  const pictures: ReportExample[] = [
    {
      caption: `exemplar: ${CLASSES[exemplarClass]} scene, ${concept} -> ${style} (style image 0)`,
      original: await scenePng(ex.rgb),
      mask: await scenePng(sceneMask(ex, concept), 1),
      transformed: await scenePng(exemplarTransformed),
    },
  ];
  for (const [name, after] of Object.entries(afterBy)) {
    for (const { i, what } of changedScenes(labels, scored.before, after, exemplarClass)) {
      pictures.push({
        caption: `${name} ${what}: ${CLASSES[labels[i]]} on ${style} (held-out style image)`,
        original: await scenePng(test.onConcept[i].rgb),
        transformed: await scenePng(test.heldout[i]),
        before: CLASSES[scored.before[i]],
        after: `${CLASSES[after[i]]} (${name})`,
      });
    }
  }

  return pictures;
}

/** What the sticker scenario shares with the snow one: data, predictions and the clean sets. */
interface Shared {
  statsData: { file: string; label: number }[];
  n: number;
  nVal: number;
  ordinary: Uint8Array[];
  labels: number[];
  cleanBefore: number[];
  valOrdinary: Uint8Array[];
  valClean: number[];
  valCleanBefore: number[];
  pictures: ReportExample[];
}

/** The typographic attack and its fix: one exemplar makes the written sticker read as blank. */
async function stickerScenario(
  classifier: Classifier,
  options: SceneDemoOptions,
  ctx: Shared,
): Promise<NonNullable<SceneDemoResult['sticker']>> {
  const { model } = classifier;
  const target = CLASSES.indexOf(STICKER_CLASS);
  const predict = (images: Uint8Array[], m: OnnxModel) =>
    predictScenes(m, images, SIZE, { threads: options.threads });
  const attack = (base: number, count: number) => {
    const others = CLASSES.flatMap((_, c) => (c === target ? [] : Array<number>(count).fill(c)));
    return {
      others,
      images: others.map(
        (c, i) => scene(base + i, { label: c, sticker: { word: STICKER_WORD } }).rgb,
      ),
    };
  };
  const test = attack(SEEDS.test + 200_000, ctx.n);
  const val = attack(SEEDS.test + 500_000, ctx.nVal);
  const rate = (others: number[], p: number[]) => ({
    accuracy: percent(p.filter((c, i) => c === others[i]).length, p.length),
    calledTarget: percent(p.filter((c) => c === target).length, p.length),
  });
  const before = await predict(test.images, model);

  // The exemplar is a failure, as a user would pick one: the first scene (of its own seed range)
  // whose written sticker makes the model say the sticker's class and whose blank one does not.
  // x is the look to keep (blank paper), x' the look to read like it (the written word).
  let written = scene(SEEDS.test - 1, { sticker: { word: STICKER_WORD } });
  let blank = scene(SEEDS.test - 1, { sticker: { word: STICKER_WORD, blank: true } });
  for (let seed = SEEDS.test - 2000; seed < SEEDS.test - 1000; seed += 16) {
    const seeds = Array.from({ length: 16 }, (_, k) => seed + k).filter(
      (s) => scene(s).label !== target,
    );
    const w = seeds.map((s) => scene(s, { sticker: { word: STICKER_WORD } }));
    const b = seeds.map((s) => scene(s, { sticker: { word: STICKER_WORD, blank: true } }));
    const [pw, pb] = [
      await predict(
        w.map((x) => x.rgb),
        model,
      ),
      await predict(
        b.map((x) => x.rgb),
        model,
      ),
    ];
    const k = pw.findIndex((p, j) => p === target && pb[j] === b[j].label);
    if (k >= 0) {
      [written, blank] = [w[k], b[k]];
      break;
    }
  }
  const mask = sceneMask(written, 'sticker');
  const exemplar = sceneExemplar(blank.rgb, written.rgb, mask);
  const valBefore = await predict(val.images, model);
  const selection = await chooseSetting(
    classifier,
    [exemplar],
    options,
    ctx.statsData,
    async (m) => ({
      score:
        rate(val.others, await predict(val.images, m)).accuracy -
        rate(val.others, valBefore).accuracy,
      cleanDrop: cleanAccuracyDrop(
        ctx.valClean,
        ctx.valCleanBefore,
        await predict(ctx.valOrdinary, m),
      ),
    }),
    // A small mask (a sticker) needs a stronger penalty than a large one (a road) to stay local.
    [METHODS.rewrite.options.penalty.default, 0.1],
  );
  const start = performance.now();
  const { layer, rank, penalty } = selection.chosen;
  const out = await edit(classifier, [exemplar], {
    method: 'rewrite',
    statsData: ctx.statsData,
    layer,
    rank,
    penalty,
    preserve: options.preserve,
  });
  const seconds = (performance.now() - start) / 1000;
  const after = await predict(test.images, out.model);
  const cleanAfter = await predict(ctx.ordinary, out.model);
  const name = CLASSES[written.label];
  ctx.pictures.push({
    caption: `sticker exemplar: a ${name} with a blank sticker (x) and with '${STICKER_WORD}' written on it (x', called ${STICKER_CLASS}): read x' like x`,
    original: await scenePng(blank.rgb),
    mask: await scenePng(mask, 1),
    transformed: await scenePng(written.rgb),
  });
  const i = before.findIndex((p, k) => p === target && after[k] === test.others[k]);
  if (i >= 0) {
    ctx.pictures.push({
      caption: `rewrite fixed: ${CLASSES[test.others[i]]} with the sticker`,
      original: await scenePng(test.images[i]),
      before: CLASSES[before[i]],
      after: `${CLASSES[after[i]]} (rewrite)`,
    });
  }
  return {
    word: STICKER_WORD,
    target: STICKER_CLASS,
    exemplarClass: name,
    images: test.images.length,
    before: rate(test.others, before),
    after: rate(test.others, after),
    perClass: CLASSES.flatMap((c, k) => {
      if (k === target) return [];
      const idx = test.others.flatMap((o, j) => (o === k ? [j] : []));
      const called = (p: number[]) =>
        percent(idx.filter((j) => p[j] === target).length, idx.length);
      return [{ name: c, calledBefore: called(before), calledAfter: called(after) }];
    }),
    selection: selection.rows,
    method: summary('rewrite', out.report.block, seconds, ctx.labels, ctx.cleanBefore, cleanAfter),
  };
}

interface SceneSet {
  labels: number[];
  onConcept: { rgb: Uint8Array }[];
  heldout: Uint8Array[];
  same: Uint8Array[];
}
type Predict = (images: Uint8Array[], m: OnnxModel) => Promise<number[]>;
interface SetPredictions {
  onConcept: number[];
  heldout: number[];
  same: number[];
}

async function predictSet(set: SceneSet, m: OnnxModel, predict: Predict): Promise<SetPredictions> {
  return {
    onConcept: await predict(
      set.onConcept.map((s) => s.rgb),
      m,
    ),
    heldout: await predict(set.heldout, m),
    same: await predict(set.same, m),
  };
}

/** The protocol's view of a scene set: each scene once per style (same image, held-out ones). */
function caseImages(
  labels: number[],
  before: SetPredictions,
  after: SetPredictions,
  target: (l: number) => boolean,
): CaseImage[] {
  return labels.flatMap((label, i) => [
    {
      label,
      target: target(label),
      style: 'same' as const,
      cleanBefore: before.onConcept[i],
      transformedBefore: before.same[i],
      transformedAfter: after.same[i],
    },
    {
      label,
      target: target(label),
      style: 'heldout' as const,
      cleanBefore: before.onConcept[i],
      transformedBefore: before.heldout[i],
      transformedAfter: after.heldout[i],
    },
  ]);
}

export type SettingRow = SelectionRow;

/**
 * The validated selection every rewrite of ruledit uses (eval/select.ts): each editable block x
 * rank x penalty (unless the user fixed them) on the validation scenes, under the guard. With
 * no setting within the clean-drop budget, the least harmful one is taken (and shown).
 */
async function chooseSetting(
  classifier: Classifier,
  exemplars: Exemplar[],
  options: SceneDemoOptions,
  statsData: { file: string }[],
  measure: (edited: OnnxModel) => Promise<{ score: number; cleanDrop: number }>,
  penalties: number[],
): Promise<{ chosen: SettingRow; rows: SettingRow[] }> {
  const { model, spec } = classifier;
  const settings = rewriteGrid(model, {
    layers: options.layer ? [options.layer] : undefined,
    ranks: options.rank ? [options.rank] : [1, 2],
    penalties: options.penalty !== undefined ? [options.penalty] : penalties,
  });
  const { rows, chosen } = await chooseRewrite(
    model,
    exemplars,
    { spec, statsData, threads: options.threads, preserve: options.preserve },
    settings,
    measure,
    options.maxDrop ?? 1,
  );
  const kept = rows.filter((r) => !r.rejected);
  if (!kept.length)
    throw new RuleditError('guard-rejected', 'the guard refused every setting of the rewrite');
  return {
    chosen: chosen?.row ?? kept.reduce((a, b) => (b.cleanDrop < a.cleanDrop ? b : a)),
    rows,
  };
}

/** Placements of a style texture (the first as it is, the others jittered): exemplar variants. */
async function placedTextures(texture: Uint8Array, variants: number): Promise<Uint8Array[]> {
  const png = await scenePng(texture);
  return Promise.all(
    jitteredPlacements(variants, 0).map(async (place) =>
      Uint8Array.from(await textureImage(png, SIZE, SIZE, 'stretch', place)),
    ),
  );
}

const meanDefined = (v: number[]) => {
  const ok = v.filter((x) => !Number.isNaN(x));
  return ok.length ? ok.reduce((a, b) => a + b, 0) / ok.length : NaN;
};

/** The first scene of the class, in a seed range of its own, that stands on the concept. */
function exemplarScene(label: number, concept: Ground) {
  for (let seed = SEEDS.test - 1000; ; seed++) {
    const s = scene(seed, { label, ground: concept, sticker: null });
    if (sceneMask(s, concept).filter((v) => v).length > 0.3 * SIZE * SIZE) return s;
  }
}

/** An exemplar straight from scene pixels (what loadExemplar would give for their PNG files). */
export function sceneExemplar(
  original: Uint8Array,
  transformed: Uint8Array,
  mask: Uint8Array,
): Exemplar {
  return {
    original: sceneInput(original, new Float32Array(original.length)),
    transformed: sceneInput(transformed, new Float32Array(transformed.length)),
    mask: Float32Array.from(mask, (v) => v / 255),
    size: [SIZE, SIZE],
    hashes: { image: sha256(original), mask: sha256(mask), replacement: sha256(transformed) },
  };
}

function summary(
  method: string,
  block: string,
  seconds: number,
  labels: number[],
  before: number[],
  after: number[],
): MethodSummary {
  const clean = changes(labels, before, after);
  return {
    method,
    block,
    seconds,
    cleanBefore: clean.before,
    cleanAfter: clean.after,
    cleanDrop: clean.before - clean.after,
  };
}

/**
 * Test scenes whose prediction a method changed: up to FIXED_SHOWN it fixed, one class each,
 * classes other than the exemplar's first, and the first it broke.
 */
function changedScenes(
  labels: number[],
  before: number[],
  after: number[],
  exemplarClass: number,
): { i: number; what: 'fixed' | 'broke' }[] {
  const { fixed, broken } = changes(labels, before, after);
  fixed.sort((a, b) => Number(labels[a] === exemplarClass) - Number(labels[b] === exemplarClass));
  const shown: number[] = [];
  for (const i of fixed)
    if (shown.length < FIXED_SHOWN && !shown.some((j) => labels[j] === labels[i])) shown.push(i);
  const broke = broken[0];
  return [
    ...shown.map((i) => ({ i, what: 'fixed' as const })),
    ...(broke === undefined ? [] : [{ i: broke, what: 'broke' as const }]),
  ];
}

const FIXED_SHOWN = 2;
