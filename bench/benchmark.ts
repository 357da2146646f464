// Cases per minute of the evaluation harness (src/eval/harness.ts), the rewrite and fine-tuning
// timed separately, on the colour world built in code (default) or on the real MobileNetV2 with
// the deeplabv3-pascal 'person' masks of ../shared/data/imagenet-sample and a real style (--real).
// Each run is timed twice in process: edited models run whole (the reference) and scored on
// their tail (eval/tail-predictions.ts), with the ratio; --workers N adds runs on a BullMQ queue
// (a redis-server on a free port) with 1..N `ruledit worker` processes.
// Usage: npx tsx bench/benchmark.ts [--real] [--cases N] [--heldout K] [--clean-limit N]
//        [--steps N] [--style NAME] [--concept NAME] [--methods a,b] [--workers N] [--verbose]
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConceptIndex, type ConceptIndex } from '../src/concepts/concept-index.ts';
import { loadStyle } from '../src/concepts/style.ts';
import { buildTestSet } from '../src/concepts/testset.ts';
import { openDataset, type DatasetItem } from '../src/data/dataset.ts';
import { loadLabels } from '../src/data/labels.ts';
import { loadPreprocess, parsePreprocess, type PreprocessSpec } from '../src/data/preprocess.ts';
import { runHarness, type HarnessOptions } from '../src/eval/harness.ts';
import { caseVariants } from '../src/concepts/testset.ts';
import { transformedFiles } from '../src/concepts/transformed.ts';
import { keyStatistics } from '../src/edit/stats.ts';
import { pickBlock } from '../src/edit/layer.ts';
import { splitReference } from '../src/edit/guard.ts';
import { queueExecutor } from '../src/queue/coordinator.ts';
import { saveModel } from '../src/onnx/save.ts';
import { cacheDir as defaultCache } from '../src/io/cache.ts';
import { spawn, spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import type { Setting } from '../src/edit/methods.ts';
import { methodGrid } from '../src/eval/grid.ts';
import { loadModel, type OnnxModel } from '../src/onnx/model.ts';
import { colourModel, PREPROCESS, writePatchWorld } from '../test/fixtures/colours.ts';
import { flag, requireShared, shared } from './snow-problem.ts';

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
  requireShared('bench/benchmark --real');
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
const cacheDir = real ? defaultCache() : join(work, 'cache');
// Queue workers read the model from a file.
if (!world.model.path) {
  await saveModel(world.model, join(work, 'model.onnx'));
  world.model = await loadModel(join(work, 'model.onnx'));
}
const classifier = { model: world.model, spec: world.spec };
// Warm the disk caches (transformed images, key statistics) so that no timed run pays for them.
for (const c of manifest.cases) {
  const v = caseVariants(manifest, c);
  await transformedFiles([...v.train, ...v.validation, ...v.test], manifest.transformation, {
    cacheDir,
    seed: manifest.seed,
  });
}
if (methods.some((m) => m.kind === 'rewrite'))
  await keyStatistics(
    world.model,
    await pickBlock(world.model, world.spec, layer.layer as string | undefined),
    splitReference(world.clean).stats,
    world.spec,
    { cacheDir },
  );

const common: HarnessOptions = {
  testsets: [manifest],
  methods,
  clean: world.clean,
  results: '',
  statsData: world.clean,
  maxDrop: 100,
  cacheDir,
  onProgress: (m) => process.argv.includes('--verbose') && console.log(m),
};
let runs = 0;
async function timed(label: string, extra: Partial<HarnessOptions>) {
  const start = performance.now();
  const run = await runHarness(classifier, {
    ...common,
    results: join(work, `r${runs++}.jsonl`),
    ...extra,
  });
  const minutes = (performance.now() - start) / 60_000;
  const cpm = run.lines.length / minutes;
  console.log(
    `\n${label}: ${run.lines.length} (case, method) jobs in ${(minutes * 60).toFixed(1)} s = ${cpm.toFixed(1)} cases/min`,
  );
  for (const m of methods) {
    const lines = run.lines.filter((l) => l.method === m.name);
    const s = lines.reduce((a, l) => a + l.seconds, 0) / lines.length;
    console.log(
      `  ${m.name.padEnd(16)} ${s.toFixed(2)} s per case (edit + scoring) -> ${(60 / s).toFixed(1)} cases/min` +
        ` | targetSame ${lines.map((l) => l.scores?.targetSame.value?.toFixed(0) ?? 'n/a').join(' ')}`,
    );
  }
  return {
    cpm,
    run,
    perCase: (name: string) => {
      const ls = run.lines.filter((l) => l.method === name);
      return ls.reduce((a, l) => a + l.seconds, 0) / ls.length;
    },
  };
}

// Point 4 of the queue issue: edited models scored on the tail from captured inputs vs whole.
const whole = await timed('in-process, every edited model run whole (before)', {
  evaluation: 'whole',
});
const tail = await timed('in-process, edited models scored on their tail (after)', {
  evaluation: 'tail',
});
const same = whole.run.lines.every(
  (l, i) => JSON.stringify(l.scores) === JSON.stringify(tail.run.lines[i].scores),
);
console.log(
  `\ntail / whole: ${(tail.cpm / whole.cpm).toFixed(2)}x cases/min; per method: ` +
    methods
      .map((m) => `${m.name} ${(whole.perCase(m.name) / tail.perCase(m.name)).toFixed(2)}x`)
      .join(', ') +
    `; scores ${same ? 'identical' : 'DIFFER'}`,
);

const workers = Number(flag('--workers', '0'));
if (workers) {
  if (spawnSync('redis-server', ['--version']).status !== 0) {
    console.error('--workers needs redis-server (apt-get install redis-server)');
    process.exit(2);
  }
  const port = 20000 + Math.floor(Math.random() * 20000);
  const url = `redis://127.0.0.1:${port}/0`;
  const redis = spawn('redis-server', [
    '--port',
    String(port),
    '--dir',
    work,
    '--save',
    '',
    '--appendonly',
    'no',
  ]);
  await new Promise((r) =>
    redis.stdout.on('data', (d) => /Ready to accept/.test(String(d)) && r(null)),
  );
  const bin = join(import.meta.dirname, '../bin/ruledit.js');
  try {
    for (let n = 1; n <= workers; n++) {
      const threads = String(Math.max(1, Math.floor(availableParallelism() / n)));
      const procs = Array.from({ length: n }, () =>
        spawn(process.execPath, [bin, 'worker', '--queue', url, '--threads', threads], {
          env: { ...process.env, RULEDIT_CACHE: cacheDir },
          stdio: 'ignore',
        }),
      );
      const q = await timed(`queue, ${n} worker process(es) x ${threads} thread(s)`, {
        executor: await queueExecutor(url),
      });
      console.log(`  vs in-process (tail): ${(q.cpm / tail.cpm).toFixed(2)}x`);
      for (const p of procs) p.kill('SIGTERM');
    }
  } finally {
    redis.kill('SIGKILL');
  }
}
