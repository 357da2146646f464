import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { RuleditError } from '../errors.js';
import { registerGradShims } from './shims.js';

export type GradBackend = 'auto' | 'wasm' | 'cpu';

export interface GradEngine {
  tf: typeof tf;
  /** The TF.js backend now active: 'tensorflow' (tfjs-node), 'wasm' or 'cpu'. */
  backend: string;
}

let wasmReady = false;
let nativeProbe: Promise<boolean> | null = null;

function prepareWasm(): void {
  if (wasmReady) return;
  // The .wasm binaries sit next to the package, not next to this file; Node cannot fetch them.
  const require = createRequire(import.meta.url);
  setWasmPaths(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')) + '/dist/');
  registerGradShims();
  wasmReady = true;
}

/**
 * tfjs-node is optional and never a dependency: it is used only when the user installed it and
 * it registered its backend with this same copy of tfjs-core (a second copy would keep it to
 * itself).
 */
function probeNative(): Promise<boolean> {
  nativeProbe ??= (async () => {
    const specifier = '@tensorflow/tfjs-node';
    try {
      await import(specifier);
    } catch {
      return false;
    }
    try {
      return tf.findBackendFactory('tensorflow') != null;
    } catch {
      return false;
    }
  })();
  return nativeProbe;
}

/**
 * tfjs-core's Node bundle ships no gradient functions. `npm run build` bundles tfjs-core's own
 * registrations of them (and of the chained tensor methods they call) into dist/vendor
 * (scripts/build.mjs); they fill the process-global registries every copy of tfjs-core shares.
 * The same file serves src/ (tsx) and dist/: both sit two levels below the package root. Loaded
 * on first use, so commands that need no gradients do not pay for it.
 */
const GRADIENTS = new URL('../../dist/vendor/tfjs-gradients.js', import.meta.url);

async function registerGradients(): Promise<void> {
  if (!existsSync(GRADIENTS))
    throw new RuleditError(
      'not-built',
      `${fileURLToPath(GRADIENTS)} is missing: run \`npm run build\` (it bundles tfjs-core's gradients)`,
    );
  await import(GRADIENTS.href);
}

async function activate(name: string): Promise<void> {
  if (tf.getBackend() !== name || tf.engine().backendName !== name) {
    const ok = await tf.setBackend(name);
    if (!ok) {
      throw new RuleditError('no-backend', `the TF.js backend '${name}' failed to start`);
    }
  }
  await tf.ready();
}

/**
 * Makes a TF.js backend for automatic differentiation active and returns it. Safe to call
 * repeatedly; each call switches the process-wide TF.js backend, so callers that alternate
 * backends must not run concurrently.
 */
export async function gradEngine(options?: { backend?: GradBackend }): Promise<GradEngine> {
  const wanted = options?.backend ?? 'auto';
  await registerGradients();
  let name: string;
  if (wanted === 'cpu') {
    name = 'cpu';
  } else if (wanted === 'auto' && (await probeNative())) {
    name = 'tensorflow';
  } else {
    prepareWasm();
    name = 'wasm';
  }
  await activate(name);
  return { tf, backend: name };
}
