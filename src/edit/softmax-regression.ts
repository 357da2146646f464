import { GraphBuilder } from '../onnx/build.js';
import { int64Tensor } from '../onnx/tensor.js';
import { FeedRunner, type Tapped } from '../runtime/session.js';

/**
 * A softmax regression z = x W^T + b trained by full-batch Adam on a weighted cross-entropy
 * sum_i w_i CE(softmax(z_i), y_i): the last layer of a classifier retrained on fixed features.
 * Its loss and exact gradient are one small ONNX graph, so ONNX Runtime's matrix products do the
 * work (a step of MobileNetV2's 1000x1280 layer on 276 images is about 1 GFLOP):
 *   g = w * (softmax(z) - onehot(y)),   dL/dW = g^T x,   dL/db = sum_i g_i.
 */
export interface SoftmaxProblem {
  /** Features, [n, in] row-major. */
  x: Float32Array;
  labels: ArrayLike<number>;
  /** Weight of each row in the loss. */
  weights: ArrayLike<number>;
  /** Starting weight [out, in] and bias [out]. */
  W: Float32Array;
  b: Float32Array;
}

export interface SoftmaxFit {
  W: Float32Array;
  b: Float32Array;
  lossBefore: number;
  lossAfter: number;
}

/** Adam's usual constants (Kingma and Ba 2015). */
const BETA1 = 0.9;
const BETA2 = 0.999;
const EPS = 1e-8;

export class SoftmaxRegression {
  private constructor(
    private readonly runner: FeedRunner,
    private readonly feeds: Record<string, Tapped>,
    readonly out: number,
    readonly inp: number,
  ) {}

  static async create(problem: SoftmaxProblem, threads?: number): Promise<SoftmaxRegression> {
    const out = problem.b.length;
    const inp = problem.W.length / out;
    const n = problem.x.length / inp;
    // The weighted one-hot targets t = w * onehot(y): loss = -sum(t * log softmax(z)).
    const t = new Float32Array(n * out);
    for (let i = 0; i < n; i++) t[i * out + problem.labels[i]] = problem.weights[i];
    const runner = await FeedRunner.create(gradientGraph(), threads, 'the last-layer gradient');
    return new SoftmaxRegression(
      runner,
      {
        x: { data: problem.x, dims: [n, inp] },
        t: { data: t, dims: [n, out] },
        w: { data: Float32Array.from(problem.weights), dims: [n, 1] },
      },
      out,
      inp,
    );
  }

  /** The loss and its gradient with respect to W and b. */
  async gradient(
    W: Float32Array,
    b: Float32Array,
  ): Promise<{ loss: number; dW: Float32Array; db: Float32Array }> {
    const r = await this.runner.runAll({
      ...this.feeds,
      W: { data: W, dims: [this.out, this.inp] },
      b: { data: b, dims: [this.out] },
    });
    return { loss: r.loss.data[0], dW: r.dW.data, db: r.db.data };
  }

  /**
   * Full-batch Adam from (W, b), b kept as it is with `bias: false`; `onStep` hears the loss
   * before each step's update.
   */
  async fit(
    start: { W: Float32Array; b: Float32Array },
    options: {
      steps: number;
      lr: number;
      bias?: boolean;
      onStep?: (step: number, loss: number) => void;
    },
  ): Promise<SoftmaxFit> {
    const params = [Float32Array.from(start.W), Float32Array.from(start.b)];
    const m = params.map((p) => new Float64Array(p.length));
    const v = params.map((p) => new Float64Array(p.length));
    let lossBefore = NaN;
    for (let step = 1; step <= options.steps; step++) {
      const g = await this.gradient(params[0], params[1]);
      if (step === 1) lossBefore = g.loss;
      options.onStep?.(step, g.loss);
      const c1 = 1 - BETA1 ** step;
      const c2 = 1 - BETA2 ** step;
      (options.bias === false ? [g.dW] : [g.dW, g.db]).forEach((grad, k) => {
        const [p, mk, vk] = [params[k], m[k], v[k]];
        for (let i = 0; i < p.length; i++) {
          mk[i] = BETA1 * mk[i] + (1 - BETA1) * grad[i];
          vk[i] = BETA2 * vk[i] + (1 - BETA2) * grad[i] * grad[i];
          p[i] -= (options.lr * (mk[i] / c1)) / (Math.sqrt(vk[i] / c2) + EPS);
        }
      });
    }
    const last = await this.gradient(params[0], params[1]);
    return { W: params[0], b: params[1], lossBefore, lossAfter: last.loss };
  }

  async release(): Promise<void> {
    await this.runner.release();
  }
}

/** loss, dW, db of the weighted cross-entropy, from inputs x, t, w, W, b (opset 13). */
function gradientGraph() {
  const g = new GraphBuilder(13);
  const x = g.input('x', ['n', 'in']);
  const t = g.input('t', ['n', 'out']);
  const w = g.input('w', ['n', 1]);
  const W = g.input('W', ['out', 'in']);
  const b = g.input('b', ['out']);
  const z = g.node('Gemm', [x, W, b], { transB: 1 });
  const logp = g.node('LogSoftmax', [z], { axis: -1 });
  const all = g.node('ReduceSum', [g.node('Mul', [t, logp])], { keepdims: 0 });
  g.node('Neg', [all], {}, 'loss');
  // softmax(z) * w - t = w * (softmax(z) - onehot(y)), since t = w * onehot(y).
  const grad = g.node('Sub', [g.node('Mul', [g.node('Softmax', [z], { axis: -1 }), w]), t]);
  g.node('Gemm', [grad, x], { transA: 1 }, 'dW');
  const axis0 = g.tensor(int64Tensor('axis0', [0]));
  g.node('ReduceSum', [grad, axis0], { keepdims: 0 }, 'db');
  g.output('loss');
  g.output('dW', ['out', 'in']);
  g.output('db', ['out']);
  return g.build().proto;
}
