import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Accuracy } from '../src/eval/accuracy.ts';
import { softmax, topK } from '../src/runtime/logits.ts';
import { rng } from '../src/util/random.ts';

describe('accuracy metrics', () => {
  it('topK agrees with a full sort on random scores (ties: lower index first)', () => {
    const u = rng(3);
    for (let trial = 0; trial < 200; trial++) {
      const n = 1 + Math.floor(u() * 30);
      const scores = Array.from({ length: n }, () => Math.round(u() * 10));
      const k = 1 + Math.floor(u() * 6);
      const expected = scores
        .map((s, i) => [s, i])
        .sort((a, b) => b[0] - a[0] || a[1] - b[1])
        .slice(0, k)
        .map(([, i]) => i);
      assert.deepEqual(topK(scores, k), expected, `scores ${scores} k ${k}`);
    }
  });

  it('counts top-1, top-5, per-class accuracy and confusions', () => {
    const acc = new Accuracy();
    const classes = 6;
    // Rows: scores favour classes [0, 1, 2, 2, 5] in that order, then the rest descending.
    const favour = [
      [0, 1, 2, 3, 4, 5],
      [1, 0, 2, 3, 4, 5],
      [2, 0, 1, 3, 4, 5],
      [2, 0, 1, 3, 4, 5],
      [5, 4, 3, 2, 1, 0],
    ];
    const logits = new Float32Array(favour.length * classes);
    favour.forEach((order, row) =>
      order.forEach((c, rank) => (logits[row * classes + c] = 10 - rank)),
    );
    acc.add(logits, classes, [0, 1, 1, 1, 0]);
    const r = acc.report((c) => `c${c}`);
    assert.equal(r.n, 5);
    assert.equal(r.top1, 40); // rows 0 and 1
    assert.equal(r.top5, 80); // row 4 ranks class 0 sixth
    assert.deepEqual(
      r.perClass.map((c) => [c.class, c.n, c.top1]),
      [
        [0, 2, 50],
        [1, 3, 100 / 3],
      ],
    );
    assert.deepEqual(
      r.confusions.map((c) => [c.class, c.predicted, c.count, c.predictedName]),
      [
        [1, 2, 2, 'c2'],
        [0, 5, 1, 'c5'],
      ],
    );
  });

  it('softmax sums to one and survives large logits', () => {
    const p = softmax([1000, 1001, 999]);
    assert.ok(Math.abs(p.reduce((a, b) => a + b) - 1) < 1e-12);
    assert.ok(p[1] > p[0] && p[0] > p[2]);
  });
});
