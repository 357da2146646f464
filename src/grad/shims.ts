import * as tf from '@tensorflow/tfjs-core';
import type { KernelFunc } from '@tensorflow/tfjs-core';
import { conv2DBackpropFilter, conv2DBackpropInputShim } from './shims/conv2d.js';
import { depthwiseBackpropFilter, depthwiseBackpropInput } from './shims/depthwise.js';

export {
  conv2DBackpropFilter,
  conv2DBackpropInputShim,
  depthwiseBackpropFilter,
  depthwiseBackpropInput,
};

/** Kernels the wasm backend lacks in tfjs 4.22; a later release may ship its own. */
const missing: Record<string, KernelFunc> = {
  Conv2DBackpropFilter: conv2DBackpropFilter,
  DepthwiseConv2dNativeBackpropFilter: depthwiseBackpropFilter,
  DepthwiseConv2dNativeBackpropInput: depthwiseBackpropInput,
};

let registered: string[] | null = null;

/** wasm's own kernels that the shims replaced, kept so benchmarks can compare against them. */
export const replacedWasmKernels = new Map<string, tf.KernelConfig>();

/**
 * Registers the gradient shims for the wasm backend, once. Returns the kernel names it
 * registered or replaced. The built-in wasm Conv2DBackpropInput is replaced for every stride:
 * the shim measured 8-11x faster at stride 1 and ~3x at stride 2 (bench/shims.ts).
 */
export function registerGradShims(): string[] {
  if (registered) return registered;
  const names: string[] = [];
  for (const [kernelName, kernelFunc] of Object.entries(missing)) {
    if (tf.getKernel(kernelName, 'wasm') == null) {
      tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc });
      names.push(kernelName);
    }
  }
  const builtin = tf.getKernel('Conv2DBackpropInput', 'wasm');
  if (builtin != null) {
    replacedWasmKernels.set('Conv2DBackpropInput', builtin);
    tf.unregisterKernel('Conv2DBackpropInput', 'wasm');
  }
  tf.registerKernel({
    kernelName: 'Conv2DBackpropInput',
    backendName: 'wasm',
    kernelFunc: conv2DBackpropInputShim,
  });
  names.push('Conv2DBackpropInput');
  registered = names;
  return names;
}
