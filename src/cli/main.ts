import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { isRuleditError } from '../errors.js';
import { VERSION } from '../version.js';
import { COMMANDS, type CommandName } from './commands.js';
import { flagOf } from './options.js';

// Ctrl-C and SIGTERM become normal exits so 'exit' handlers remove half-written temporary files.
process.once('SIGINT', () => process.exit(130));
process.once('SIGTERM', () => process.exit(143));

const program = new Command('ruledit')
  .description('Edit image classifiers by rewriting their prediction rules (ONNX in, ONNX out).')
  .version(VERSION)
  // One line, like every other error: commander's own message and where to read the usage.
  .configureOutput({
    outputError: (message, write) =>
      write(`ruledit: ${message.trim()} (run with --help for usage)\n`),
  })
  .configureHelp({ showGlobalOptions: true })
  .addHelpText(
    'after',
    `\nThe method, its objective, solver, guard and protocol: docs/method.md (${fileURLToPath(new URL('../../docs/method.md', import.meta.url))})`,
  )
  .exitOverride();

// Only the command that runs is loaded (`ruledit help CMD` loads CMD); the listing of `--help`
// and the version need none of them.
const [first, second] = process.argv.slice(2);
const wanted = (first === 'help' ? second : first) as CommandName;
if (Object.hasOwn(COMMANDS, wanted)) (await COMMANDS[wanted].load())(program);
else for (const [name, c] of Object.entries(COMMANDS)) program.command(name).description(c.about);
for (const cmd of program.commands) cmd.exitOverride();

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    // Help and version are successes; every usage error is a user error (exit 2).
    process.exitCode = e.exitCode === 0 ? 0 : 2;
  } else if (isRuleditError(e)) {
    // The library names its options in backquotes (`statsData`); here they are flags. A message
    // quoting a file's contents (a JSON parser's) may hold a newline: the error stays one line.
    const message = e.message
      .replace(/`([a-z][A-Za-z.]*)`/g, (_, key: string) => flagOf(key))
      .replace(/\s*\n\s*/g, ' ');
    process.stderr.write(`ruledit: error: ${message}\n`);
    process.exitCode = 2;
  } else {
    throw e;
  }
}
