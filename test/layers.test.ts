import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

/**
 * The layers of src/, lowest first: a module imports only from its own layer and those below
 * (DESIGN.md's layout). Same rank: neither imports the other (util and io are peers). The entry
 * points at src/'s top (index, protocol, onnx, synth, classifier, errors) are outside the order.
 */
const LAYERS = [
  ['util', 'io'],
  ['onnx'],
  ['data'],
  ['runtime'],
  ['grad'],
  ['concepts'],
  ['edit'],
  ['eval'],
  ['report', 'synth'],
  ['demo'],
  ['queue'],
  ['server'],
  ['cli'],
];
const rank = new Map(LAYERS.flatMap((names, r) => names.map((n) => [n, r] as const)));

describe('layers', () => {
  it('no module of src/ imports from a layer above its own (nor from a peer layer)', () => {
    const upward: string[] = [];
    for (const [layer, r] of rank)
      for (const file of readdirSync(join('src', layer), { recursive: true }) as string[]) {
        if (!file.endsWith('.ts')) continue;
        const text = readFileSync(join('src', layer, file), 'utf8');
        for (const [, target] of text.matchAll(/from '\.\.\/([a-z-]+)\//g)) {
          const t = rank.get(target);
          if (t !== undefined && target !== layer && t >= r)
            upward.push(`src/${layer}/${file} imports ${target}/`);
        }
      }
    assert.deepEqual(upward, []);
  });
});
