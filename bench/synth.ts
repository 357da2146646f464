// Scene generation speed on one core (target: >= 500 scenes/s at 64x64), against the baseline
// of reading the same scenes back from PNG files with sharp (what a stored data set costs), in
// the same run. Medians of interleaved rounds.
// Usage: npx tsx bench/synth.ts [--n N] [--rounds R] [--size PX]
import sharp from 'sharp';
import { scene } from '../src/synth/world.ts';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const n = flag('--n', 2000);
const rounds = flag('--rounds', 5);
const size = flag('--size', 64);
// One libvips thread, so both sides use one core.
sharp.concurrency(1);

const pngs = await Promise.all(
  Array.from({ length: n }, (_, i) =>
    sharp(Buffer.from(scene(i, { size }).rgb), { raw: { width: size, height: size, channels: 3 } })
      .png()
      .toBuffer(),
  ),
);

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const gen: number[] = [];
const read: number[] = [];
for (let r = 0; r < rounds; r++) {
  let t = performance.now();
  for (let i = 0; i < n; i++) scene(i, { size });
  gen.push(n / ((performance.now() - t) / 1000));
  t = performance.now();
  for (const p of pngs) await sharp(p).raw().toBuffer();
  read.push(n / ((performance.now() - t) / 1000));
}
const g = median(gen);
const d = median(read);
console.log(
  `scenes ${size}x${size}: drawn ${g.toFixed(0)}/s, decoded from PNG ${d.toFixed(0)}/s (sharp, 1 thread)`,
);
console.log(
  `ratio drawn / decoded: ${(g / d).toFixed(2)}  (target: drawn >= 500/s: ${g >= 500 ? 'met' : 'NOT met'})`,
);
