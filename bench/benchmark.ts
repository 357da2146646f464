// Cases per minute of the evaluation harness (src/eval/harness.ts), the rewrite and fine-tuning
// timed separately, on the colour world built in code (default) or on the real MobileNetV2 with
// the deeplabv3-pascal 'person' masks of ../shared/data/imagenet-sample and a real style (--real).
// Usage: npx tsx bench/benchmark.ts [--real] [--cases N] [--heldout K] [--clean-limit N]
//        [--steps N] [--style NAME] [--concept NAME]
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConceptIndex, type ConceptIndex } from '../src/concepts/concept-index.ts';
import { loadStyle } from '../src/concepts/style.ts';
import { buildTestSet } from '../src/concepts/testset.ts';
import { openDataset, type DatasetItem } from '../src/data/dataset.ts';
import { loadLabels } from '../src/data/labels.ts';
import { loadPreprocess, parsePreprocess, type PreprocessSpec } from '../src/data/preprocess.ts';
import { runHarness } from '../src/eval/harness.ts';
import type { Setting } from '../src/edit/methods.ts';
import { methodGrid } from '../src/eval/grid.ts';
import { loadModel, type OnnxModel } from '../src/onnx/model.ts';
import { colourModel, PREPROCESS, writePatchWorld } from '../test/fixtures/colours.ts';
import { flag, shared } from './snow-problem.ts';

const real = process.argv.includes('--real');
const nCases = Number(flag('--cases', real ? '2' : '4'));
const steps = Number(flag('--steps', '400'));
const work = await mkdtemp(join(tmpdir(), 'ruledit-bench-harness-'));

interface World {
  model: OnnxModel;
  spec: PreprocessSpec;
  index: ConceptIndex;
  clean: DatasetItem[];
  concept: string;
  styleDir: string;
  nTrain: number;
  classNames?: string[];
}

/** The colour world: 6 classes x 8 images with a coloured patch (the concept), blue styles. */
async function colourWorld(): Promise<World> {
  const { index, styleDir } = await writePatchWorld(work, { classes: 6, perClass: 8, styles: 5 });
  return {
    model: colourModel(),
    spec: parsePreprocess(PREPROCESS, 'bench'),
    index,
    clean: (await openDataset(join(work, 'images'))).items,
    concept: 'patch',
    styleDir,
    nTrain: 3,
  };
}

/** MobileNetV2, imagenet-sample (one photo per class, so n_train = 1) and its deeplab masks. */
async function realWorld(): Promise<World> {
  if (!existsSync(shared)) {
    console.error(
      'bench/benchmark --real: ../shared is absent; it needs the real model and photos',
    );
    process.exit(2);
  }
  const m = join(shared, 'models/mobilenetv2-imagenet');
  const data = join(shared, 'data/imagenet-sample');
  console.log('concept index (deeplabv3-pascal; cached after the first build, ~6 min on 2 cores)');
  const index = await buildConceptIndex(data, {
    kind: 'segmentation',
    model: join(shared, 'models/deeplabv3-pascal/model.onnx'),
  });
  const items = (await openDataset(data)).items;
  const limit = Number(flag('--clean-limit', '250'));
  const step = items.length / Math.min(limit, items.length);
  return {
    model: await loadModel(join(m, 'model.onnx')),
    spec: await loadPreprocess(join(m, 'preprocess.json')),
    index,
    clean: Array.from(
      { length: Math.min(limit, items.length) },
      (_, i) => items[Math.floor(i * step)],
    ),
    concept: flag('--concept', 'person'),
    styleDir: join(shared, 'data/styles', flag('--style', 'snowy_ground')),
    nTrain: 1,
    classNames: await loadLabels(join(m, 'labels.txt')),
  };
}

const world = real ? await realWorld() : await colourWorld();
const manifest = buildTestSet(world.index, {
  concept: world.concept,
  style: await loadStyle(world.styleDir),
  nTrain: world.nTrain,
  seed: 0,
  heldout: flag('--heldout', '') ? Number(flag('--heldout', '')) : real ? 1 : undefined,
  classNames: world.classNames,
});
manifest.cases = manifest.cases.slice(0, nCases);
const c0 = manifest.cases[0];
console.log(
  `${real ? 'MobileNetV2' : 'colour world'}: concept '${manifest.concept}', style '${manifest.style.name}', ` +
    `${manifest.cases.length} cases, n_train ${manifest.nTrain}, ${c0.heldoutStyles.length} held-out style image(s); ` +
    `per case ${c0.validation.length + c0.test.length} test images x ${1 + c0.heldoutStyles.length} styles, ` +
    `clean set ${world.clean.length} images`,
);

const only = flag('--methods', '');
const layer: Setting = real ? {} : { layer: 'score' };
const methods = [
  methodGrid('rewrite', [{ ...layer }]),
  methodGrid('finetune-local', [{ ...layer, steps, lr: 1e-4, optimizer: 'sgd' }]),
  methodGrid('finetune-global', [{ ...layer, steps, lr: 1e-4, optimizer: 'sgd' }]),
].filter((m) => !only || only.split(',').includes(m.name));
const prepared: number[] = [];
let last = performance.now();
const start = performance.now();
const run = await runHarness(
  { model: world.model, spec: world.spec },
  {
    testsets: [manifest],
    methods,
    clean: world.clean,
    results: join(work, 'results.jsonl'),
    statsData: world.clean,
    maxDrop: 100,
    cacheDir: real ? undefined : join(work, 'cache'),
    onProgress: (m) => {
      const prep = / \(([\d.]+) s to prepare\)$/.exec(m);
      if (prep) prepared.push((performance.now() - last) / 1000);
      last = performance.now();
      if (process.argv.includes('--verbose')) console.log(m);
    },
  },
);
const total = (performance.now() - start) / 1000;

// Per method: its own seconds per case (edit + predictions of the edited model); the shared part
// (transforming, the original model's predictions, statistics on first use) is shown apart.
console.log(
  `\nharness wall time ${total.toFixed(1)} s for ${run.lines.length} (case, method) jobs`,
);
const shared0 = prepared.reduce((a, b) => a + b, 0) / prepared.length;
console.log(`shared per case (transform + original predictions): ${shared0.toFixed(1)} s`);
for (const m of methods) {
  const lines = run.lines.filter((l) => l.method === m.name);
  const s = lines.reduce((a, l) => a + l.seconds, 0) / lines.length;
  console.log(
    `${m.name.padEnd(16)} ${s.toFixed(2)} s/case -> ${(60 / s).toFixed(1)} cases/min alone, ` +
      `${(60 / (s + shared0)).toFixed(1)} cases/min with the shared part` +
      ` | targetSame ${lines.map((l) => l.scores?.targetSame.value?.toFixed(0) ?? 'n/a').join(' ')}`,
  );
}
