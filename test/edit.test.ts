import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import sharp from 'sharp';
import type { Exemplar } from '../src/concepts/exemplar.ts';
import { batches } from '../src/data/batches.ts';
import { normalizePixels } from '../src/data/image.ts';
import { areaResize } from '../src/data/mask.ts';
import { parsePreprocess } from '../src/data/preprocess.ts';
import { contextDirection } from '../src/edit/direction.ts';
import { activeEdits, revertLast, stripHistory } from '../src/edit/record.ts';
import { rewrite } from '../src/edit/rewrite.ts';
import {
  activate,
  activationSlope,
  PIECEWISE_TOLERANCE,
  pieceOf,
  piecewiseLinear,
  valueIn,
} from '../src/edit/activation.ts';
import { minimizeAlongLine } from '../src/edit/solve-subspace.ts';
import { keyStatistics, type KeyStats } from '../src/edit/stats.ts';
import { whitening } from '../src/edit/whiten.ts';
import { findBlock, listBlocks, type Activation } from '../src/onnx/blocks.ts';
import { GraphBuilder } from '../src/onnx/build.ts';
import { readHistory } from '../src/onnx/history.ts';
import { serializeModel, type OnnxModel } from '../src/onnx/model.ts';
import { readWeight } from '../src/onnx/weights.ts';
import { Runner } from '../src/runtime/session.ts';
import { normals, rng } from '../src/util/random.ts';
import { resnetLike, tokenLike, vggLike } from './fixtures/nets.ts';
import { blockForward, maxAbsDiff } from './fixtures/reference.ts';

const spec = parsePreprocess({ size: 12, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] }, 'test');
const vggSpec = parsePreprocess({ size: 16, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] }, 'test');

/** Random symmetric positive definite n x n matrix with eigenvalues in [lo, hi]. */
function spd(n: number, seed: number, lo = 0.1, hi = 10): Float64Array {
  const a = normals(n * n, seed);
  // Orthonormal basis by Gram-Schmidt on random vectors.
  const q: Float64Array[] = [];
  for (let i = 0; i < n; i++) {
    const v = Float64Array.from(a.subarray(i * n, (i + 1) * n));
    for (const u of q) {
      const dot = u.reduce((s, x, k) => s + x * v[k], 0);
      for (let k = 0; k < n; k++) v[k] -= dot * u[k];
    }
    const norm = Math.hypot(...v);
    q.push(v.map((x) => x / norm));
  }
  const C = new Float64Array(n * n);
  q.forEach((u, i) => {
    const s = lo + ((hi - lo) * i) / (n - 1);
    for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) C[r * n + c] += s * u[r] * u[c];
  });
  return C;
}

const matmul = (A: Float64Array, B: Float64Array, n: number) => {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let k = 0; k < n; k++)
      for (let j = 0; j < n; j++) out[i * n + j] += A[i * n + k] * B[k * n + j];
  return out;
};

/** A random RGB image in pixel units and a copy with a square region filled white. */
function exemplar(size: number, seed: number, region = [3, 3, 9, 9]): Exemplar {
  const u = rng(seed);
  const px = Float32Array.from({ length: size * size * 3 }, () => Math.floor(u() * 256));
  const mask = new Float32Array(size * size);
  const moved = Float32Array.from(px);
  const [x0, y0, x1, y1] = region;
  for (let y = y0; y < y1; y++)
    for (let x = x0; x < x1; x++) {
      mask[y * size + x] = 1;
      moved.fill(255, (y * size + x) * 3, (y * size + x) * 3 + 3);
    }
  const s = size === 12 ? spec : vggSpec;
  return {
    original: normalizePixels(px, s),
    transformed: normalizePixels(moved, s),
    mask,
    size: [size, size],
    hashes: { image: `i${seed}`, mask: 'm', replacement: 'white' },
  };
}

let statsDir: string;
const statsFor = async (model: OnnxModel, name: string, size: number): Promise<KeyStats> => {
  const block = findBlock(listBlocks(model.proto.graph!), name);
  const files = [];
  for (let i = 0; i < 12; i++) {
    const file = join(statsDir, `ref${size}-${i}.png`);
    const raw = Buffer.from(
      Array.from({ length: size * size * 3 }, (_, k) => (k * 37 + i * 101) % 256),
    );
    await writeFile(
      file,
      await sharp(raw, { raw: { width: size, height: size, channels: 3 } })
        .png()
        .toBuffer(),
    );
    files.push({ file });
  }
  return keyStatistics(model, block, files, size === 12 ? spec : vggSpec, {
    cacheDir: join(statsDir, 'cache'),
  });
};

before(async () => {
  statsDir = await mkdtemp(join(tmpdir(), 'ruledit-edit-'));
});

describe('statistics and whitening', () => {
  it('Z C Z = I to 1e-6 relative', () => {
    const n = 24;
    const C = spd(n, 5);
    const { Z, clamped, repaired } = whitening(C, n);
    const I = matmul(matmul(Z, C, n), Z, n);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++)
        assert.ok(
          Math.abs(I[i * n + j] - (i === j ? 1 : 0)) < 1e-6,
          `[${i},${j}] = ${I[i * n + j]}`,
        );
    assert.equal(clamped, 0);
    assert.equal(repaired, false);
  });

  it('repairs a matrix that is not positive definite, and rejects NaN', () => {
    const C = new Float64Array([2, 0, 0, -1]);
    const w = whitening(C, 2);
    assert.equal(w.repaired, true);
    assert.equal(w.clamped, 1);
    assert.throws(() => whitening(new Float64Array([1, NaN, NaN, 1]), 2), { code: 'not-finite' });
  });

  it('the second moment from ONNX Runtime equals a direct float64 sum over every position', async () => {
    const model = resnetLike();
    const stats = await statsFor(model, 'res.b', 12);
    const block = findBlock(listBlocks(model.proto.graph!), 'res.b');
    const runner = await Runner.create(model, { taps: [block.key] });
    const C = new Float64Array(64);
    let count = 0;
    const { batches } = await import('../src/data/batches.ts');
    const files = Array.from({ length: 12 }, (_, i) => ({
      file: join(statsDir, `ref12-${i}.png`),
    }));
    for await (const b of batches(files, spec, { batchSize: 5 })) {
      const k = (await runner.run(b.data, b.dims)).taps[block.key];
      const [n, c, h, w] = k.dims;
      for (let s = 0; s < n; s++)
        for (let p = 0; p < h * w; p++, count++)
          for (let i = 0; i < c; i++)
            for (let j = 0; j < c; j++)
              C[i * c + j] += k.data[(s * c + i) * h * w + p] * k.data[(s * c + j) * h * w + p];
    }
    assert.equal(stats.count, count);
    assert.ok(
      maxAbsDiff(
        stats.C,
        C.map((v) => v / count),
      ) <
        1e-4 * Math.max(...stats.C),
    );
    // The second call is served from the cache, bit for bit.
    assert.deepEqual((await statsFor(model, 'res.b', 12)).C, stats.C);
  });
});

describe('context direction', () => {
  it('recovers a planted direction: d is along C^-1 u for keys along u (|cos| > 0.99)', () => {
    const n = 16;
    const C = spd(n, 9, 0.5, 4);
    const { Z } = whitening(C, n);
    const u = normals(n, 3);
    const positions = 30;
    const noise = normals(n * positions, 4, 0.01);
    const keys = new Float32Array(n * positions);
    const weights = new Float32Array(positions);
    for (let p = 0; p < positions; p++) {
      weights[p] = p % 3 === 0 ? 0 : 0.5 + (p % 5) / 10;
      for (let c = 0; c < n; c++)
        keys[c * positions + p] = (1 + p / 10) * u[c] + noise[c * positions + p];
    }
    const dir = contextDirection([{ keys, weights }], Z, n, 1);
    // C^-1 u = Z Z u.
    const zu = Array.from({ length: n }, (_, i) => u.reduce((s, x, j) => s + Z[i * n + j] * x, 0));
    const cinv = Array.from({ length: n }, (_, i) =>
      zu.reduce((s, x, j) => s + Z[i * n + j] * x, 0),
    );
    const cos = cinv.reduce((s, x, i) => s + x * dir.d[i], 0) / Math.hypot(...cinv);
    assert.ok(Math.abs(cos) > 0.99, `cos ${cos}`);
    assert.ok(cos > 0, 'sign rule: d agrees with the sum of the rows');
    assert.throws(() => contextDirection([{ keys, weights }], Z, n, 25), { code: 'bad-rank' });
  });
});

describe('the line minimizer', () => {
  it('finds the exact minimum of sum c_i |act(a_i + b_i x) - v_i| for every activation (vs a fine grid)', () => {
    const u = rng(1);
    const kinds: Activation[] = [
      { kind: 'relu6' },
      { kind: 'relu' },
      { kind: 'none' },
      { kind: 'leaky-relu', alpha: 0.1 },
      { kind: 'hard-sigmoid', alpha: 0.2, beta: 0.5 },
      { kind: 'hardswish', alpha: 1 / 6, beta: 0.5 },
      { kind: 'silu' },
      { kind: 'tanh' },
    ];
    for (let t = 0; t < 160; t++) {
      const act = piecewiseLinear(kinds[t % kinds.length]);
      const at = (s: number) => valueIn(act, pieceOf(act, s), s);
      const n = 1 + Math.floor(u() * 15);
      const r = () => Float64Array.from({ length: n }, () => u());
      const [a, b, v, c] = [
        r().map((x) => (x - 0.3) * 8),
        r().map((x) => (x - 0.5) * 4),
        r().map((x) => at((x - 0.3) * 8)),
        r(),
      ];
      const f = (x: number) =>
        a.reduce((s, ai, i) => s + c[i] * Math.abs(at(ai + b[i] * x) - v[i]), 0);
      let grid = Infinity;
      for (let x = -20; x <= 20; x += 0.002) grid = Math.min(grid, f(x));
      assert.ok(f(minimizeAlongLine(a, b, v, c, act, 0)) <= grid + 1e-9, `trial ${t}`);
    }
  });
});

describe('the pooled line minimizer', () => {
  it('finds the exact minimum of sum c_i |act(max_{j in W_i} (a_j + b_j x)) - v_i| with overlapping windows (vs a fine grid)', () => {
    const u = rng(2);
    const kinds: Activation[] = [
      { kind: 'relu' },
      { kind: 'relu6' },
      { kind: 'none' },
      { kind: 'leaky-relu', alpha: 0.1 },
      { kind: 'sigmoid' },
    ];
    for (let t = 0; t < 150; t++) {
      const act = piecewiseLinear(kinds[t % kinds.length]);
      const at = (s: number) => valueIn(act, pieceOf(act, s), s);
      const lines = 2 + Math.floor(u() * 8);
      const terms = 1 + Math.floor(u() * 6);
      const r = (n: number) => Float64Array.from({ length: n }, () => u());
      const a = r(lines).map((x) => (x - 0.3) * 8);
      const b = r(lines).map((x) => (x - 0.5) * 4);
      // Windows of 1 to 4 lines, drawn with repeats across terms (pools overlap).
      const starts = [0];
      const members: number[] = [];
      for (let i = 0; i < terms; i++) {
        const size = 1 + Math.floor(u() * 4);
        const pick = new Set(Array.from({ length: size }, () => Math.floor(u() * lines)));
        members.push(...pick);
        starts.push(members.length);
      }
      const windows = { starts: Int32Array.from(starts), members: Int32Array.from(members) };
      const v = r(terms).map((x) => at((x - 0.3) * 8));
      const c = r(terms);
      const f = (x: number) => {
        let total = 0;
        for (let i = 0; i < terms; i++) {
          let s = -Infinity;
          for (let m = starts[i]; m < starts[i + 1]; m++)
            s = Math.max(s, a[members[m]] + b[members[m]] * x);
          total += c[i] * Math.abs(at(s) - v[i]);
        }
        return total;
      };
      let grid = Infinity;
      for (let x = -20; x <= 20; x += 0.002) grid = Math.min(grid, f(x));
      const best = minimizeAlongLine(a, b, v, c, act, 0, 0, windows);
      assert.ok(f(best) <= grid + 1e-9, `trial ${t}: ${f(best)} vs grid ${grid}`);
    }
  });
});

describe('activations', () => {
  it('the piecewise-linear forms are exact for the piecewise-linear activations and within the relative tolerance for the rest, at every scale; slopes match finite differences', () => {
    const kinds: [Activation, number][] = [
      [{ kind: 'none' }, 0],
      [{ kind: 'relu' }, 0],
      [{ kind: 'relu6' }, 0],
      [{ kind: 'leaky-relu', alpha: 0.01 }, 0],
      [{ kind: 'hard-sigmoid', alpha: 1 / 6, beta: 0.5 }, 0],
      [{ kind: 'hardswish', alpha: 1 / 6, beta: 0.5 }, PIECEWISE_TOLERANCE],
      [{ kind: 'sigmoid' }, PIECEWISE_TOLERANCE],
      [{ kind: 'silu' }, PIECEWISE_TOLERANCE],
      [{ kind: 'tanh' }, PIECEWISE_TOLERANCE],
      [{ kind: 'gelu' }, PIECEWISE_TOLERANCE],
      [{ kind: 'gelu-tanh' }, PIECEWISE_TOLERANCE],
    ];
    // A coarse grid over the whole line and a fine one at the data's scale.
    const grid = (step: number, to: number) =>
      Array.from({ length: Math.floor((2 * to) / step) + 1 }, (_, k) => -to + k * step);
    for (const [a, tolerance] of kinds)
      for (const scale of [1, 1e-4]) {
        const pl = piecewiseLinear(a, scale);
        let [gap, slopeGap] = [0, 0];
        for (const s of [...grid(0.0137, 30), ...grid(scale * 0.0137, 50 * scale)]) {
          const off = Math.abs(valueIn(pl, pieceOf(pl, s), s) - activate(a, s));
          gap = Math.max(gap, tolerance ? off / (tolerance * Math.max(Math.abs(s), scale)) : off);
          const h = 1e-6;
          // Not across a knot: the activations with kinks have them at knots.
          if (pieceOf(pl, s - 2 * h) !== pieceOf(pl, s + 2 * h)) continue;
          const fd = (activate(a, s + h) - activate(a, s - h)) / (2 * h);
          slopeGap = Math.max(slopeGap, Math.abs(fd - activationSlope(a, s)));
        }
        assert.ok(tolerance ? gap <= 1 : gap < 1e-9, `${a.kind} at scale ${scale}: gap ${gap}`);
        assert.ok(slopeGap < 1e-5, `${a.kind}: slope off by ${slopeGap}`);
        assert.ok(pl.knots.length < 80, `${a.kind}: ${pl.knots.length} knots`);
      }
  });
});

describe('rewrite', () => {
  it('changes only span(d): keys with d.k = 0 give the same block output; all else bit-identical', async () => {
    for (const [make, name, size, rank] of [
      [resnetLike, 'res.b', 12, 1],
      [resnetLike, 'down', 12, 2],
      [vggLike, 'conv2', 16, 1],
      [vggLike, 'fc1', 16, 1],
    ] as const) {
      const model = make();
      const stats = await statsFor(model, name, size);
      const s = size === 12 ? spec : vggSpec;
      const {
        model: edited,
        record,
        report,
      } = await rewrite(model, [exemplar(size, 1), exemplar(size, 2, [0, 0, 8, 6])], {
        spec: s,
        guard: false,
        stats,
        layer: name,
        rank,
      });
      assert.ok(
        report.lossAfter < report.lossBefore,
        `${name}: loss ${report.lossBefore} -> ${report.lossAfter}`,
      );
      const block = findBlock(listBlocks(model.proto.graph!), name);
      const d = record.direction as number[];
      const cin = block.weightShape[1];
      // Random keys with every position's channel vector projected off span(d).
      const positions = block.conv ? (name === 'conv2' ? 64 : 144) : 1;
      const side = Math.sqrt(positions);
      const k = normals(cin * positions, 17);
      for (let p = 0; p < positions; p++)
        for (let r = 0; r < rank; r++) {
          const dr = d.slice(r * cin, (r + 1) * cin);
          const dot = dr.reduce((acc, x, c) => acc + x * k[c * positions + p], 0);
          for (let c = 0; c < cin; c++) k[c * positions + p] -= dot * dr[c];
        }
      const key = { data: k, dims: block.conv ? [1, cin, side, side] : [1, cin] };
      const diff = maxAbsDiff(
        blockForward(model, block, key).data,
        blockForward(edited, block, key).data,
      );
      assert.ok(diff <= 1e-5, `${name}: output moved by ${diff} on keys orthogonal to d`);
      assert.ok(
        maxAbsDiff(readWeight(model, block), readWeight(edited, block)) > 1e-4,
        `${name}: weight unchanged`,
      );
      const before = new Map(model.proto.graph!.initializer!.map((t) => [t.name, t.rawData]));
      for (const t of edited.proto.graph!.initializer!)
        if (t.name !== block.weight)
          assert.deepEqual(t.rawData, before.get(t.name), `${name}: ${t.name}`);
    }
  });

  it('a block that ends a VGG stage takes its value after the MaxPool (key 16x16, value 8x8) and its objective there; pool: false takes both before it', async () => {
    const model = vggLike();
    const block = findBlock(listBlocks(model.proto.graph!), 'conv1');
    assert.deepEqual(block.chain, ['Conv', 'BatchNormalization', 'Relu', 'MaxPool']);
    assert.equal(block.value, 'pool1');
    assert.equal(block.pool?.input, 'relu1');
    const stats = await statsFor(model, 'conv1', 16);
    const ex = exemplar(16, 1);
    const tap = async (m: OnnxModel, image: Float32Array, tensor: string) => {
      const runner = await Runner.create(m, { taps: [tensor] });
      const out = await runner.run(image, [1, 3, 16, 16]);
      await runner.release();
      return out.taps[tensor].data;
    };
    const losses: number[] = [];
    for (const pool of [true, false]) {
      const { model: edited, report } = await rewrite(model, [ex], {
        spec: vggSpec,
        guard: false,
        stats,
        layer: 'conv1',
        pool,
      });
      // The objective recomputed from ONNX Runtime's value tensors, at the value's resolution.
      const [tensor, side] = pool ? ['pool1', 8] : ['relu1', 16];
      const target = await tap(model, ex.original, tensor);
      const weight = areaResize(ex.mask, 16, 16, side, side).map(Math.sqrt);
      const objective = (values: Float32Array) => {
        let total = 0;
        for (let i = 0; i < values.length; i++)
          total += weight[i % (side * side)] * Math.abs(values[i] - target[i]);
        return total / values.length;
      };
      const before = objective(await tap(model, ex.transformed, tensor));
      const after = objective(await tap(edited, ex.transformed, tensor));
      assert.ok(
        Math.abs(report.lossBefore - before) <= 1e-6 * before,
        `${pool}: ${report.lossBefore} vs ${before}`,
      );
      assert.ok(
        Math.abs(report.lossAfter - after) <= 1e-5 * before,
        `${pool}: ${report.lossAfter} vs ${after}`,
      );
      assert.ok(after < 0.8 * before, `${pool}: ${before} -> ${after}`);
      losses.push(before);
    }
    assert.notEqual(losses[0], losses[1]);
    // Adam takes the gradient through the pool's largest position, and descends.
    const published = await rewrite(model, [ex], {
      spec: vggSpec,
      guard: false,
      stats,
      layer: 'conv1',
      solver: 'published',
      lr: 1e-2,
      steps: 300,
    });
    assert.ok(published.report.lossAfter < 0.5 * published.report.lossBefore);
  });

  it('a MatMul on tokens [N, T, C] edits per patch token: statistics over every token, the mask on the patch grid, the class token left out', async () => {
    const model = tokenLike();
    const block = findBlock(listBlocks(model.proto.graph!), 'fc1');
    assert.deepEqual(block.chain, ['MatMul', 'Add(bias)', 'Relu']);
    const stats = await statsFor(model, 'fc1', 16);
    // C = mean over images and all 17 tokens of k k^T, from ONNX Runtime's own keys.
    const images = [];
    for (let i = 0; i < 12; i++) images.push(join(statsDir, `ref16-${i}.png`));
    const keysOf = async (m: OnnxModel, data: Float32Array, n: number, tensor: string) => {
      const runner = await Runner.create(m, { taps: [tensor] });
      const out = await runner.run(data, [n, 3, 16, 16]);
      await runner.release();
      return out.taps[tensor];
    };
    let refs: Float32Array = new Float32Array();
    for await (const b of batches(
      images.map((file) => ({ file })),
      vggSpec,
      { batchSize: 12 },
    ))
      refs = b.data;
    const k = await keysOf(model, refs, 12, 'seq');
    assert.deepEqual(k.dims, [12, 17, 8]);
    const C = new Float64Array(64);
    for (let t = 0; t < 12 * 17; t++)
      for (let i = 0; i < 8; i++)
        for (let j = 0; j < 8; j++)
          C[i * 8 + j] += (k.data[t * 8 + i] * k.data[t * 8 + j]) / (12 * 17);
    assert.equal(stats.count, 12 * 17);
    assert.ok(maxAbsDiff(stats.C, C) <= 1e-5 * Math.max(...C.map(Math.abs)));

    // The top-left quadrant: patches (0, 0), (0, 1), (1, 0), (1, 1) of the 4x4 grid.
    const ex = exemplar(16, 3, [0, 0, 8, 8]);
    const {
      model: edited,
      record,
      report,
    } = await rewrite(model, [ex], {
      spec: vggSpec,
      guard: false,
      stats,
      layer: 'fc1',
    });
    assert.deepEqual(report.keyGrid, { height: 4, width: 4, masked: 4 });
    // The objective from ONNX Runtime's [1, 17, 12] values: patch tokens only, mask on the grid.
    const objective = async (m: OnnxModel) => {
      const target = await keysOf(model, ex.original, 1, 'fc1.relu');
      const now = await keysOf(m, ex.transformed, 1, 'fc1.relu');
      let total = 0;
      for (let p = 0; p < 16; p++) {
        const w = Math.sqrt(p % 4 < 2 && p < 8 ? 1 : 0);
        for (let o = 0; o < 12; o++) {
          const i = (1 + p) * 12 + o;
          total += w * Math.abs(now.data[i] - target.data[i]);
        }
      }
      return total / (16 * 12);
    };
    const [before, after] = [await objective(model), await objective(edited)];
    assert.ok(
      Math.abs(report.lossBefore - before) <= 1e-6 * before,
      `${report.lossBefore} vs ${before}`,
    );
    assert.ok(
      Math.abs(report.lossAfter - after) <= 1e-5 * before,
      `${report.lossAfter} vs ${after}`,
    );
    assert.ok(after < 0.8 * before, `${before} -> ${after}`);
    // dW = (d-direction) outer (anything): keys orthogonal to d map as before.
    const d = record.direction as number[];
    const [w0, w1] = [readWeight(model, block), readWeight(edited, block)];
    for (let o = 0; o < 12; o++) {
      const dw = Array.from({ length: 8 }, (_, c) => w1[o * 8 + c] - w0[o * 8 + c]);
      const along = dw.reduce((acc, x, c) => acc + x * d[c], 0);
      for (let c = 0; c < 8; c++) assert.ok(Math.abs(dw[c] - along * d[c]) < 1e-6);
    }
  });

  it('reaches a loss no higher than the published schedule on the same problem', async () => {
    const model = resnetLike();
    const stats = await statsFor(model, 'res.b', 12);
    const ex = [exemplar(12, 3)];
    const ours = await rewrite(model, ex, { spec, guard: false, stats, layer: 'res.b' });
    const published = await rewrite(model, ex, {
      spec,
      guard: false,
      stats,
      layer: 'res.b',
      solver: 'published',
      lr: 1e-2,
      steps: 300,
    });
    assert.ok(
      ours.report.lossAfter <= published.report.lossAfter + 1e-6,
      `ours ${ours.report.lossAfter} vs published ${published.report.lossAfter}`,
    );
    assert.ok(published.report.lossAfter < published.report.lossBefore);
  });

  it("unmasked, as published: the objective counts every position, the direction stays the concept's", async () => {
    const model = resnetLike();
    const stats = await statsFor(model, 'res.b', 12);
    const ex = [exemplar(12, 3)];
    const common = { spec, guard: false as const, stats, layer: 'res.b' };
    const masked = await rewrite(model, ex, common);
    const unmasked = await rewrite(model, ex, { ...common, useMask: false });
    // Same d: the share of the masked keys' norm along it is the same number.
    assert.equal(unmasked.report.keyNormFraction, masked.report.keyNormFraction);
    assert.notEqual(unmasked.report.lossBefore, masked.report.lossBefore, 'other objective');
  });

  it('two edits compose, then revert in order to bit-identical weights and outputs', async () => {
    const model = resnetLike();
    const s1 = await statsFor(model, 'res.b', 12);
    const s2 = await statsFor(model, 'down', 12);
    const first = await rewrite(model, [exemplar(12, 4)], {
      spec,
      guard: false,
      stats: s1,
      layer: 'res.b',
    });
    const second = await rewrite(first.model, [exemplar(12, 5)], {
      spec,
      guard: false,
      stats: s2,
      layer: 'down',
    });
    assert.deepEqual(
      readHistory(second.model).map((r) => r.block),
      ['res.b', 'down'],
    );
    assert.deepEqual(activeEdits(readHistory(second.model)), [0, 1]);
    const blocks = listBlocks(model.proto.graph!);
    const weightOf = (m: OnnxModel, n: string) => readWeight(m, findBlock(blocks, n));
    const undo1 = revertLast(second.model);
    assert.equal(undo1.index, 1);
    assert.deepEqual(weightOf(undo1.model, 'down'), weightOf(model, 'down'));
    assert.deepEqual(weightOf(undo1.model, 'res.b'), weightOf(first.model, 'res.b'));
    const undo2 = revertLast(undo1.model);
    assert.equal(undo2.index, 0);
    assert.deepEqual(weightOf(undo2.model, 'res.b'), weightOf(model, 'res.b'));
    const input = normals(3 * 144, 8);
    const a = await (await Runner.create(model)).run(input, [1, 3, 12, 12]);
    const b = await (await Runner.create(undo2.model)).run(input, [1, 3, 12, 12]);
    assert.deepEqual(a.logits.data, b.logits.data);
    assert.throws(() => revertLast(undo2.model), { code: 'no-edit' });
    // A reverted edit keeps its summary and hashes, not its copy of the old weights.
    const undone = readHistory(undo2.model).slice(0, 2);
    for (const r of undone)
      for (const t of r.tensors as { previous?: string; before: string }[]) {
        assert.equal(t.previous, undefined);
        assert.match(t.before, /^[0-9a-f]{64}$/);
      }
    // strip drops the undo data of the edits in force too: same weights, a smaller file, no revert.
    const { model: stripped, bytes } = stripHistory(second.model);
    assert.ok(bytes > 0);
    assert.equal(readHistory(stripped).at(-1)!.method, 'strip');
    assert.deepEqual(weightOf(stripped, 'down'), weightOf(second.model, 'down'));
    assert.ok(serializeModel(stripped.proto).length < serializeModel(second.model.proto).length);
    assert.throws(() => revertLast(stripped), { code: 'no-undo' });
  });

  it('refuses key statistics too large to compute (a VGG-sized Gemm), before reading any image', async () => {
    const g = new GraphBuilder(13);
    g.input('x', ['N', 25088]);
    g.node(
      'Gemm',
      ['x', g.init('fc.w', [10, 25088], new Float32Array(250880))],
      { transB: 1 },
      'fc',
    );
    g.output('fc', ['N', 10]);
    const model = g.build();
    const block = findBlock(listBlocks(model.proto.graph!), 'fc');
    await assert.rejects(keyStatistics(model, block, [], spec), {
      code: 'keys-too-large',
      message: /25088-dimensional keys: .* 25088x25088 float64 matrix \(4\.7 GB\)/,
    });
  });

  it('rejects bad input with typed errors', async () => {
    const model = resnetLike();
    const stats = await statsFor(model, 'res.b', 12);
    await assert.rejects(
      rewrite(model, [exemplar(16, 1)], { spec, guard: false, stats, layer: 'res.b' }),
      {
        code: 'bad-exemplar',
      },
    );
    await assert.rejects(
      rewrite(model, [exemplar(12, 1)], { spec, guard: false, stats, layer: 'nope' }),
      {
        code: 'no-block',
      },
    );
    await assert.rejects(
      rewrite(model, [exemplar(12, 1)], { spec, guard: false, stats, layer: 'res.b', rank: 50 }),
      { code: 'bad-rank' },
    );
    await assert.rejects(rewrite(model, [exemplar(12, 1)], { spec, layer: 'res.b' }), {
      code: 'no-stats',
    });
    const empty = exemplar(12, 1);
    empty.mask.fill(0);
    await assert.rejects(rewrite(model, [empty], { spec, guard: false, stats, layer: 'res.b' }), {
      code: 'bad-mask',
    });
    const nan = { ...stats, C: stats.C.map((v, i) => (i === 3 ? NaN : v)) };
    await assert.rejects(
      rewrite(model, [exemplar(12, 1)], { spec, guard: false, stats: nan, layer: 'res.b' }),
      {
        code: 'not-finite',
      },
    );
  });
});
