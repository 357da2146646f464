import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { loadClassifier, type Classifier } from '../src/classifier.ts';
import { loadExemplars } from '../src/concepts/exemplar.ts';
import { transformedFiles } from '../src/concepts/transformed.ts';
import { openDataset, type DatasetItem } from '../src/data/dataset.ts';
import { areaResize, loadMask } from '../src/data/mask.ts';
import { contextMatch } from '../src/edit/match.ts';
import { BUILTIN_MODEL } from '../src/synth/builtin.ts';
import { writeScenes, writeStyles } from '../src/synth/write.ts';
import { ruledit } from './fixtures/cli.ts';

/**
 * The context match on the built-in scene world, where masks are exact: the exemplar is a car on
 * a road turned snowy; the searched images are road scenes made snowy with a held-out snow image,
 * plain road scenes and plain grass scenes.
 */
let dir: string;
let classifier: Classifier;
let reference: DatasetItem[];
let snowy: { file: string; mask: string }[];
let searched: DatasetItem[];
let args: string[];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ruledit-match-'));
  classifier = await loadClassifier(BUILTIN_MODEL);
  await writeStyles(join(dir, 'styles'));
  await writeScenes(join(dir, 'road'), { perClass: 2, seed: 4, ground: 'road' });
  await writeScenes(join(dir, 'grass'), { perClass: 1, seed: 5, ground: 'grass' });
  await writeScenes(join(dir, 'ref'), { perClass: 8, seed: 3 });
  reference = (await openDataset(join(dir, 'ref'))).items;
  const road = (await openDataset(join(dir, 'road'))).items;
  const maskOf = (f: string) => f.replace('/images/', '/masks/road/');
  const held = join(dir, 'styles', 'snow', '3.png');
  const files = await transformedFiles(
    road.map((i) => ({ image: i.file, mask: maskOf(i.file), style: held })),
    { kind: 'texture' },
    { cacheDir: join(dir, 'cache') },
  );
  snowy = files.map((file, i) => ({ file, mask: maskOf(road[i].file) }));
  searched = [
    ...snowy.map((s) => ({ file: s.file })),
    ...road,
    ...(await openDataset(join(dir, 'grass'))).items,
  ];
  const car = join(dir, 'road', 'images', 'car-0.png');
  args = [
    'match',
    BUILTIN_MODEL,
    '--image',
    car,
    '--mask',
    maskOf(car),
    '--style',
    join(dir, 'styles', 'snow'),
    '--stats-data',
    join(dir, 'ref'),
  ];
});

describe('context match', () => {
  it('ranks the snowy roads first, and matches inside their road more than outside', async () => {
    const car = join(dir, 'road', 'images', 'car-0.png');
    const exemplars = await loadExemplars(
      car,
      car.replace('/images/', '/masks/road/'),
      { style: join(dir, 'styles', 'snow') },
      classifier.spec,
    );
    const m = await contextMatch(classifier, exemplars, searched, { statsData: reference });
    assert.equal(m.block, 'res2b');
    assert.deepEqual(m.grid, { height: 8, width: 8 });
    // AUC of 'snowy road' against the plain scenes (measured 0.97 when written).
    const isSnowy = new Set(snowy.map((s) => s.file));
    const pos = m.ranking.filter((r) => isSnowy.has(r.file));
    const neg = m.ranking.filter((r) => !isSnowy.has(r.file));
    let auc = 0;
    for (const p of pos) for (const n of neg) auc += Number(p.score > n.score);
    auc /= pos.length * neg.length;
    assert.ok(auc >= 0.9, `AUC ${auc.toFixed(3)}`);
    // Inside the snowy road (its mask at the key grid) the match is higher than outside.
    let [inside, outside, nIn, nOut] = [0, 0, 0, 0];
    for (const s of snowy) {
      const map = m.ranking.find((r) => r.file === s.file)!.map;
      const [h, w] = classifier.spec.size;
      const at = areaResize(await loadMask(s.mask, 64, 64, classifier.spec), w, h, 8, 8);
      at.forEach((w, p) => {
        if (w >= 0.75) [inside, nIn] = [inside + map[p], nIn + 1];
        else if (w <= 0.25) [outside, nOut] = [outside + map[p], nOut + 1];
      });
    }
    [inside, outside] = [inside / nIn, outside / nOut];
    assert.ok(
      inside > outside + 0.3,
      `mean match inside ${inside.toFixed(2)}, outside ${outside.toFixed(2)}`,
    );
  });

  it('ruledit match prints the ranking as JSON and writes a report with heat maps', async () => {
    const data = join(dir, 'grass', 'images');
    const r = await ruledit([...args, '--data', data, '--json', '--report', join(dir, 'report')]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.ranking.length, 10);
    assert.deepEqual(Object.keys(out.ranking[0]).sort(), ['file', 'score']);
    const scores = out.ranking.map((x: { score: number }) => x.score);
    assert.deepEqual(
      scores,
      [...scores].sort((a, b) => b - a),
      'best first',
    );
    const html = readFileSync(join(dir, 'report', 'report.html'), 'utf8');
    assert.match(html, /Where the context matches: res2b/);
    assert.match(html, /<span>match<\/span>/, 'the heat map is named as such');
    assert.equal(new Set(html.match(/#\d+, match [\d.]+/g)).size, 10, 'one card per image');
    assert.ok(existsSync(join(dir, 'report', 'report.json')));
    // A report already there is refused before any work, not after it.
    const again = await ruledit([...args, '--data', data, '--report', join(dir, 'report')]);
    assert.equal(again.code, 2);
    assert.match(
      again.stderr,
      /already holds a report \(report\.html, report\.json\); pass --force/,
    );
    assert.doesNotMatch(again.stderr, /match:/, 'refused before the progress of the match');
    const none = await ruledit([
      ...args.filter((a, i) => a !== '--stats-data' && args[i - 1] !== '--stats-data'),
      '--data',
      data,
    ]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /required option '--stats-data/);
  });
});
