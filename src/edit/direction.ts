import { EigenvalueDecomposition, Matrix } from 'ml-matrix';
import { RuleditError } from '../errors.js';

/** Keys of one exemplar at the key resolution: dim x positions (channel-major), and mask weights. */
export interface WeightedKeys {
  keys: Float32Array;
  /** Mask area-averaged to the key resolution, one weight per position. */
  weights: Float32Array;
}

export interface Direction {
  /** rank x dim, orthonormal rows. */
  d: Float64Array;
  rank: number;
  dim: number;
  /** Fraction of the masked exemplar keys' norm along span(d): near 0 means the edit cannot act. */
  keyNormFraction: number;
  /** Masked positions used (weight > 0), over all exemplars. */
  positions: number;
}

/**
 * The context direction (docs/method.md section 2): the top-r right singular vectors of the stacked
 * whitened, weighted keys z = w Z k, mapped back through Z, orthonormalized (QR), each signed to
 * agree with the sum of the rows z.
 */
export function contextDirection(
  exemplars: WeightedKeys[],
  Z: Float64Array,
  dim: number,
  rank: number,
): Direction {
  const rows: Float64Array[] = [];
  const raw: Float64Array[] = [];
  for (const { keys, weights } of exemplars) {
    const positions = weights.length;
    for (let p = 0; p < positions; p++) {
      const w = weights[p];
      if (!(w > 0)) continue;
      const k = new Float64Array(dim);
      for (let c = 0; c < dim; c++) k[c] = keys[c * positions + p];
      const z = new Float64Array(dim);
      // Four rows of Z at a time, each summed in order over j (the same bits as one at a time):
      // independent sums keep the multiplier busy, one sum waits on its own previous add.
      let i = 0;
      for (; i + 4 <= dim; i += 4) {
        let [a0, a1, a2, a3] = [0, 0, 0, 0];
        const r = i * dim;
        for (let j = 0; j < dim; j++) {
          const kj = k[j];
          a0 += Z[r + j] * kj;
          a1 += Z[r + dim + j] * kj;
          a2 += Z[r + 2 * dim + j] * kj;
          a3 += Z[r + 3 * dim + j] * kj;
        }
        [z[i], z[i + 1], z[i + 2], z[i + 3]] = [w * a0, w * a1, w * a2, w * a3];
      }
      for (; i < dim; i++) {
        let acc = 0;
        for (let j = 0; j < dim; j++) acc += Z[i * dim + j] * k[j];
        z[i] = w * acc;
      }
      rows.push(z);
      raw.push(k.map((v) => v * w));
    }
  }
  if (rows.length === 0)
    throw new RuleditError('bad-mask', "the mask covers no position at this layer's resolution");
  if (rank > rows.length) {
    throw new RuleditError(
      'bad-rank',
      `rank ${rank} is larger than the ${rows.length} masked positions at this layer; give a \`rank\` of ${rows.length} or less`,
    );
  }
  if (rank > dim)
    throw new RuleditError('bad-rank', `rank ${rank} is larger than the key dimension ${dim}`);
  // Right singular vectors of the stack = eigenvectors of its Gram matrix R^T R (dim x dim).
  const gram = Array.from({ length: dim }, () => new Array<number>(dim).fill(0));
  for (const z of rows) {
    for (let i = 0; i < dim; i++) {
      const zi = z[i];
      if (zi === 0) continue;
      const g = gram[i];
      for (let j = i; j < dim; j++) g[j] += zi * z[j];
    }
  }
  for (let i = 0; i < dim; i++) for (let j = 0; j < i; j++) gram[i][j] = gram[j][i];
  const evd = new EigenvalueDecomposition(new Matrix(gram), { assumeSymmetric: true });
  const values = evd.realEigenvalues;
  const order = values.map((_, i) => i).sort((a, b) => values[b] - values[a]);
  const sum = new Float64Array(dim);
  for (const z of rows) for (let i = 0; i < dim; i++) sum[i] += z[i];

  const d = new Float64Array(rank * dim);
  for (let r = 0; r < rank; r++) {
    const q = evd.eigenvectorMatrix.getColumn(order[r]);
    const v = d.subarray(r * dim, (r + 1) * dim);
    for (let i = 0; i < dim; i++) {
      let acc = 0;
      for (let j = 0; j < dim; j++) acc += Z[i * dim + j] * q[j];
      v[i] = acc;
    }
    // QR by Gram-Schmidt (twice, for stability): orthonormal against the earlier directions.
    for (let pass = 0; pass < 2; pass++) {
      for (let s = 0; s < r; s++) {
        const u = d.subarray(s * dim, (s + 1) * dim);
        const dot = u.reduce((a, x, i) => a + x * v[i], 0);
        for (let i = 0; i < dim; i++) v[i] -= dot * u[i];
      }
    }
    const norm = Math.hypot(...v);
    if (!(norm > 0))
      throw new RuleditError(
        'bad-rank',
        `direction ${r + 1} vanished: the exemplar keys span fewer than ${rank} directions`,
      );
    const sign = v.reduce((a, x, i) => a + x * sum[i], 0) < 0 ? -1 : 1;
    for (let i = 0; i < dim; i++) v[i] = (sign * v[i]) / norm;
  }
  // Diagnostic: how much of the (weighted) exemplar keys lies in span(d).
  let along = 0;
  let total = 0;
  for (const k of raw) {
    total += k.reduce((a, x) => a + x * x, 0);
    for (let r = 0; r < rank; r++) {
      const dot = d.subarray(r * dim, (r + 1) * dim).reduce((a, x, i) => a + x * k[i], 0);
      along += dot * dot;
    }
  }
  return {
    d,
    rank,
    dim,
    keyNormFraction: total > 0 ? Math.sqrt(along / total) : 0,
    positions: rows.length,
  };
}
