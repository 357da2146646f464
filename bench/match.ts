// The context match on the real MobileNetV2: the street exemplar (road mask) turned snowy with the
// five snowy_ground images, searched over snow-dev (42 vehicles on snowy roads) and
// imagenet-sample (1000 photos); statistics from imagenet-sample as `edit` takes them. Prints the
// share of snow-dev photos among the top 42 by match against the share expected by chance, per block.
// Usage: npx tsx bench/match.ts [--layers conv61,conv52]
import { join } from 'node:path';
import { loadClassifier } from '../src/classifier.ts';
import { openDataset } from '../src/data/dataset.ts';
import { contextMatch } from '../src/edit/match.ts';
import { flag, requireShared, shared, snowyStreet } from './snow-problem.ts';

requireShared('bench/match');
const c = await loadClassifier(join(shared, 'models/mobilenetv2-imagenet/model.onnx'));
const exemplars = await snowyStreet(c.spec);
const snow = (await openDataset(join(shared, 'data/snow-dev'))).items;
const sample = (await openDataset(join(shared, 'data/imagenet-sample'))).items;
const items = [...snow, ...sample];
const isSnow = new Set(snow.map((i) => i.file));
const chance = (100 * snow.length) / items.length;
for (const layer of flag('--layers', 'auto,conv52,conv43').split(',')) {
  const t = performance.now();
  const m = await contextMatch(c, exemplars, items, { statsData: sample, layer });
  const top = m.ranking.slice(0, snow.length);
  const hits = top.filter((r) => isSnow.has(r.file)).length;
  const rankOf = new Map(m.ranking.map((r, i) => [r.file, i]));
  const medianSnowRank = snow.map((s) => rankOf.get(s.file)!).sort((a, b) => a - b)[
    snow.length >> 1
  ];
  console.log(
    `${m.block} (${m.grid.height}x${m.grid.width}): ${hits}/${snow.length} snow-dev photos in the top ${snow.length} ` +
      `= ${((100 * hits) / snow.length).toFixed(1)}% (chance ${chance.toFixed(1)}%), median snow-dev rank ${medianSnowRank + 1} of ${items.length}; ` +
      `${((performance.now() - t) / 1000).toFixed(0)} s`,
  );
  console.log(
    `  top 10: ${m.ranking
      .slice(0, 10)
      .map((r) => r.file.split('/').slice(-2).join('/'))
      .join(', ')}`,
  );
}
