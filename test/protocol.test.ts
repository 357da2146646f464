import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  cleanAccuracyDrop,
  errorsCorrected,
  fourWay,
  selectSetting,
  type CaseImage,
} from '../src/eval/protocol.ts';

const img = (
  label: number,
  clean: number,
  before: number,
  after: number,
  target = true,
  style: 'same' | 'heldout' = 'same',
): CaseImage => ({
  label,
  target,
  style,
  cleanBefore: clean,
  transformedBefore: before,
  transformedAfter: after,
});

describe('evaluation protocol (docs/method.md section 9)', () => {
  it('counts errors only among images correct before the transformation', () => {
    const r = errorsCorrected([
      img(1, 1, 2, 1), // broken by the transformation, fixed by the edit
      img(1, 1, 2, 2), // broken, still broken
      img(1, 1, 1, 1), // never broken
      img(1, 3, 2, 1), // wrong before the transformation: not counted
    ]);
    assert.deepEqual(r, { value: 50, before: 2, after: 1, images: 3 });
  });

  it('floors at -100 and says NaN when there was nothing to fix', () => {
    assert.equal(
      errorsCorrected([img(1, 1, 2, 3), img(1, 1, 1, 2), img(1, 1, 1, 2), img(1, 1, 1, 4)]).value,
      -100,
    );
    assert.ok(Number.isNaN(errorsCorrected([img(1, 1, 1, 2)]).value));
    assert.ok(Number.isNaN(errorsCorrected([]).value));
    // The tolerance bounds the denominator from below.
    assert.equal(errorsCorrected([img(1, 1, 2, 1)], 4).value, 25);
  });

  it('splits into target/other x same/held-out', () => {
    const r = fourWay([
      img(1, 1, 2, 1, true, 'same'),
      img(1, 1, 2, 2, true, 'heldout'),
      img(2, 2, 3, 2, false, 'same'),
      img(2, 2, 2, 2, false, 'heldout'),
    ]);
    assert.equal(r.targetSame.value, 100);
    assert.equal(r.targetHeldout.value, 0);
    assert.equal(r.otherSame.value, 100);
    assert.ok(Number.isNaN(r.otherHeldout.value));
  });

  it('measures the clean accuracy drop in points', () => {
    assert.equal(cleanAccuracyDrop([1, 2, 3, 4], [1, 2, 3, 0], [1, 2, 0, 0]), 25);
    assert.equal(cleanAccuracyDrop([1, 2], [0, 2], [1, 2]), -50);
  });

  it('selects the best validation score among settings within the accuracy budget', () => {
    const cands = [
      { setting: 'a', score: 80, cleanDrop: 0.5 }, // best score but breaks too much
      { setting: 'b', score: 60, cleanDrop: 0.2 },
      { setting: 'c', score: NaN, cleanDrop: 0 },
      { setting: 'd', score: 40, cleanDrop: 0.25 },
    ];
    assert.equal(selectSetting(cands)?.setting, 'b');
    assert.equal(selectSetting(cands, 1)?.setting, 'a');
    assert.equal(selectSetting([{ setting: 'x', score: 10, cleanDrop: 3 }]), undefined);
  });
});
