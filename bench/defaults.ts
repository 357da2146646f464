// How the rewrite's defaults (placements per style image, preserve weight) were chosen: on the
// built-in scene world's validation scenes (the demo's selection score), never on a test set.
// npx tsx bench/defaults.ts [--variants 1,4] [--preserves 0,1]
import { loadClassifier } from '../src/classifier.ts';
import { runSceneDemo } from '../src/demo/scenes.ts';
import { BUILTIN_MODEL } from '../src/synth/builtin.ts';
import { flag } from './snow-problem.ts';

const list = (name: string, fallback: string) => flag(name, fallback).split(',').map(Number);
const classifier = await loadClassifier(BUILTIN_MODEL);
console.log(
  'variants\tpreserve\tblock\tvalidation score\ttest: others held-out\tclean drop\tkept strength',
);
for (const variants of list('--variants', '1,4'))
  for (const preserve of list('--preserves', '0,1')) {
    const { result } = await runSceneDemo(classifier, {
      images: Number(flag('--images', '20')),
      finetune: false,
      sticker: false,
      variants,
      preserve,
    });
    const best = result.selection
      .filter((r) => !r.rejected && r.cleanDrop <= 1)
      .reduce((a, b) => (b.score > a.score ? b : a));
    const m = result.methods[0];
    console.log(
      `${variants}\t${preserve}\t${m.block}\t${best.score.toFixed(1)}\t${result.errorsCorrected.rewrite.otherHeldout.value.toFixed(1)}\t${m.cleanDrop.toFixed(1)}\t${result.guard?.strength.toFixed(2)}`,
    );
  }
