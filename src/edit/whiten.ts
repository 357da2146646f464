import { EigenvalueDecomposition, Matrix } from 'ml-matrix';
import { RuleditError } from '../errors.js';
import { sha256 } from '../io/digest.js';

/** ZCA whitening of a second-moment matrix (docs/method.md section 2). */
export interface Whitening {
  dim: number;
  /** Z = U diag(1/sqrt(max(s, floor))) U^T, row-major dim x dim. */
  Z: Float64Array;
  /** Eigenvalues of C, descending. */
  eigenvalues: Float64Array;
  /** The floor eigenvalues were raised to (relative floor times the largest eigenvalue). */
  floor: number;
  /** How many eigenvalues were below the floor (clamped). */
  clamped: number;
  /** True when C had eigenvalues <= 0 (not positive definite) and was repaired by clamping. */
  repaired: boolean;
}

/**
 * Z = C^(-1/2) through a symmetric eigendecomposition. Eigenvalues under `relativeFloor` times the
 * largest are clamped: a plain positive-definiteness test passes on near-singular statistics, yet
 * whitening then sends the edit direction into near-null directions (docs/method.md section 10).
 */
export function whitening(C: Float64Array, dim: number, relativeFloor = 1e-6): Whitening {
  // The eigendecomposition is most of an edit's time at a wide block: statistics reused across
  // edits (the harness's trials, the web editor's edits, each reading them anew from the cache)
  // are decomposed once. Known by content; a few kept (4096 keys: 128 MB each). Read-only results.
  const id = `${sha256(new Uint8Array(C.buffer, C.byteOffset, C.byteLength))}:${dim}:${relativeFloor}`;
  const known = recent.get(id) ?? decompose(C, dim, relativeFloor);
  recent.delete(id);
  recent.set(id, known);
  for (const old of [...recent.keys()].slice(0, -RECENT)) recent.delete(old);
  return known;
}

const RECENT = 2;
const recent = new Map<string, Whitening>();

function decompose(C: Float64Array, dim: number, relativeFloor: number): Whitening {
  for (let i = 0; i < C.length; i++) {
    if (!Number.isFinite(C[i]))
      throw new RuleditError('not-finite', 'key statistics contain NaN or Inf');
  }
  const rows = Array.from({ length: dim }, (_, i) =>
    Array.from(C.subarray(i * dim, (i + 1) * dim)),
  );
  const evd = new EigenvalueDecomposition(new Matrix(rows), { assumeSymmetric: true });
  const values = evd.realEigenvalues;
  const U = evd.eigenvectorMatrix;
  const order = values.map((_, i) => i).sort((a, b) => values[b] - values[a]);
  const largest = values[order[0]];
  if (!(largest > 0))
    throw new RuleditError(
      'bad-stats',
      'key statistics are zero: every key is zero on the reference data',
    );
  const floor = largest * relativeFloor;
  const scale = values.map((s) => 1 / Math.sqrt(Math.max(s, floor)));
  const Z = new Float64Array(dim * dim);
  for (let k = 0; k < dim; k++) {
    const col = U.getColumn(k);
    const s = scale[k];
    for (let i = 0; i < dim; i++) {
      const ui = col[i] * s;
      if (ui === 0) continue;
      const row = i * dim;
      for (let j = 0; j < dim; j++) Z[row + j] += ui * col[j];
    }
  }
  return {
    dim,
    Z,
    eigenvalues: Float64Array.from(order, (i) => values[i]),
    floor,
    clamped: values.filter((s) => s < floor).length,
    repaired: values.some((s) => s <= 0),
  };
}
