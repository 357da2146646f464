import { ABOUT } from './commands.js';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { RuleditError } from '../errors.js';
import { createServer } from '../server/app.js';
import { ensureWebBuild } from '../server/web.js';
import { BUILTIN_MODEL } from '../synth/builtin.js';
import { positiveIntOption, repeatedOption } from './options.js';

interface ServeFlags {
  port: number;
  host: string;
  data: string[];
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description(ABOUT.serve)
    .argument('[model]', 'ONNX model file (default: the built-in scene model)')
    .option(
      '--port <n>',
      'port (0 = any free port)',
      (v) => {
        const port = v === '0' ? 0 : positiveIntOption(v);
        if (port > 65535) throw new InvalidArgumentError(`a port is at most 65535, got ${v}`);
        return port;
      },
      8017,
    )
    .option('--host <address>', 'address to bind (keep 127.0.0.1 unless you know why)', '127.0.0.1')
    .option(
      '--data <dir>',
      'folder the page may read images from (repeatable); with your own model these also give the reference images for the key statistics, and the first labelled one is the test folder',
      repeatedOption,
      [],
    )
    .action(async (model: string | undefined, flags: ServeFlags) => {
      const modelPath = model ? resolve(model) : BUILTIN_MODEL;
      if (!model && !existsSync(BUILTIN_MODEL))
        throw new RuleditError(
          'no-model',
          `the built-in model ${BUILTIN_MODEL} is missing; rebuild it with 'npx ruledit synth train'`,
        );
      const data = flags.data.map((d) => resolve(d));
      for (const d of data)
        if (!existsSync(d)) throw new RuleditError('not-found', `data folder not found: ${d}`);
      const webRoot = await ensureWebBuild((m) => process.stderr.write(`${m}\n`));
      const { app, token } = await createServer({
        modelPath,
        builtin: !model,
        data,
        webRoot,
        host: flags.host,
      });
      if (!['127.0.0.1', 'localhost', '::1'].includes(flags.host))
        process.stderr.write(
          `ruledit serve: warning: listening on ${flags.host}: anyone who can reach it and has the URL's token can read the --data folders\n`,
        );
      await app.listen({ port: flags.port, host: flags.host }).catch((e: NodeJS.ErrnoException) => {
        const why: Record<string, string> = {
          EADDRINUSE: `port ${flags.port} is in use: choose another with --port (0 = any free port)`,
          EACCES: `port ${flags.port} needs privileges: choose one above 1023 with --port`,
          EADDRNOTAVAIL: `${flags.host} is not an address of this machine (--host)`,
          ENOTFOUND: `${flags.host} is not an address (--host)`,
        };
        throw e.code && why[e.code] ? new RuleditError('cannot-listen', why[e.code]) : e;
      });
      const port = (app.server.address() as { port: number }).port;
      const host = flags.host.includes(':') ? `[${flags.host}]` : flags.host;
      console.log(
        `ruledit serve: ${modelPath}\nopen http://${host}:${port}/?token=${token}\n(Ctrl-C to stop)`,
      );
    });
}
