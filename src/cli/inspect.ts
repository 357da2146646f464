import type { Command } from 'commander';
import { ABOUT } from './commands.js';
import { activationName, findBlock, listBlocks, modulePath } from '../onnx/blocks.js';
import { modelInputs } from '../onnx/model.js';
import { tensorShapes } from '../runtime/capture.js';
import { findPreprocess, inputDims } from '../classifier.js';
import { loadModel } from '../onnx/model.js';
import { preprocessOption, sideOption } from './options.js';
import { table } from './table.js';

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description(ABOUT.inspect)
    .argument('<model>', 'ONNX model file')
    .option(
      '--size <n>',
      "input size for the spatial column (default: the model's or preprocess.json's)",
      sideOption,
    )
    .addOption(preprocessOption())
    .option('--layer <name>', 'show one block (by name, PyTorch module path or index) in detail')
    .option('--wide', "also show each block's graph node and key/value tensor names", false)
    .option('--json', 'print the blocks as JSON', false)
    .action(inspect);
}

export async function inspect(
  modelPath: string,
  opts: { size?: number; preprocess?: string; layer?: string; json?: boolean; wide?: boolean },
): Promise<void> {
  const model = await loadModel(modelPath);
  const spec = await findPreprocess(model, opts.preprocess);
  const all = listBlocks(model.proto.graph!);
  // Asking for one block by name is asking to edit it: a non-editable one is an error with its reason.
  const blocks = opts.layer ? [findBlock(all, opts.layer)] : all;
  const dims = inputDims(model, spec, opts.size);
  const shapes = await tensorShapes(
    model,
    [...new Set(blocks.flatMap((b) => [b.key, b.value]))],
    dims,
  );
  const spatial = (t: string) => {
    const d = shapes[t];
    return d.length === 4 ? (spec?.layout === 'NHWC' ? [d[1], d[2]] : [d[2], d[3]]) : [];
  };
  // A MatMul on tokens ([N, T, C]) has T keys per image: no spatial map, a token count.
  const tokens = (t: string) => (shapes[t].length === 3 ? shapes[t][1] : undefined);
  const rows = blocks.map((b) => ({
    ...b,
    keySpatial: spatial(b.key),
    valueSpatial: spatial(b.value),
    ...(tokens(b.key) !== undefined ? { tokens: tokens(b.key) } : {}),
  }));
  if (opts.json) {
    const input = { ...modelInputs(model.proto)[0], dims };
    console.log(
      JSON.stringify({ model: model.path, hash: model.hash, input, blocks: rows }, null, 2),
    );
    return;
  }
  if (opts.layer) {
    const b = rows[0];
    const detail: [string, string | undefined][] = [
      ['block', `${b.index} ${b.name}`],
      ['module', modulePath(b.name) === b.name ? undefined : modulePath(b.name)],
      ['chain', b.chain.join(' > ')],
      ['weight', `${b.weightShape.join('x')} (${b.weight})${b.bias ? `, bias ${b.bias}` : ''}`],
      ['key', `${b.key} ${b.keySpatial.join('x')}`],
      ['value', `${b.value} ${b.valueSpatial.join('x')}`],
      ['skip', b.skip],
      ['activation', activationName(b.activation)],
      [
        'conv',
        b.conv &&
          `kernel ${b.conv.kernel.join('x')}, strides ${b.conv.strides.join(',')}, pads ${b.conv.pads.join(',')}`,
      ],
    ];
    for (const [k, v] of detail) if (v) console.log(`${k.padEnd(11)}${v}`);
    return;
  }
  const editable = rows.filter((b) => b.editable).length;
  console.log(
    `${model.path}\ninput ${dims.join('x')}; ${rows.length} linear layers, ${editable} editable blocks\n`,
  );
  // Names as the user wrote the model (PyTorch module paths); --wide adds the graph's own names.
  const wide = opts.wide === true;
  console.log(
    table(
      [
        '#',
        'name',
        'chain',
        'weight',
        ...(wide ? ['node', 'key -> value'] : []),
        'spatial',
        'editable',
      ],
      rows.map((b) => [
        String(b.index),
        modulePath(b.name),
        b.chain.join(' > '),
        b.weightShape.join('x'),
        ...(wide ? [b.name, `${b.key} -> ${b.value}`] : []),
        b.valueSpatial.length
          ? b.valueSpatial.join('x')
          : b.tokens !== undefined
            ? `${b.tokens} tokens`
            : '-',
        b.editable ? 'yes' : `no: ${b.reason!.split(':')[0]}`,
      ]),
    ),
  );
}
