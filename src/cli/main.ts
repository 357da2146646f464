import { Command, CommanderError } from 'commander';
import { isRuleditError } from '../errors.ts';
import { VERSION } from '../version.ts';
import { registerDemo } from './demo.ts';
import { registerEdit } from './edit.ts';
import { registerHistory } from './history.ts';
import { registerStats } from './stats.ts';
import { registerSynth } from './synth.ts';
import { registerEval } from './eval.ts';
import { registerInspect } from './inspect.ts';
import { registerPredict } from './predict.ts';
import { registerReport } from './report.ts';
import { registerTransform } from './transform.ts';
import { registerConcepts } from './concepts.ts';
import { registerTestset } from './testset.ts';
import { registerDiscover } from './discover.ts';
import { registerBenchmark } from './benchmark.ts';
import { registerServe } from './serve.ts';

// Ctrl-C becomes a normal exit so 'exit' handlers remove half-written temporary files.
process.once('SIGINT', () => process.exit(130));

const program = new Command('ruledit')
  .description('Edit image classifiers by rewriting their prediction rules (ONNX in, ONNX out).')
  .version(VERSION)
  .showHelpAfterError('(run with --help for usage)')
  .configureHelp({ showGlobalOptions: true })
  .exitOverride();

registerDemo(program);
registerInspect(program);
registerPredict(program);
registerEval(program);
registerStats(program);
registerEdit(program);
registerHistory(program);
registerSynth(program);
registerReport(program);
registerTransform(program);
registerConcepts(program);
registerTestset(program);
registerDiscover(program);
registerBenchmark(program);
registerServe(program);
for (const cmd of program.commands) cmd.exitOverride();

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    // Help and version are successes; every usage error is a user error (exit 2).
    process.exitCode = e.exitCode === 0 ? 0 : 2;
  } else if (isRuleditError(e)) {
    process.stderr.write(`ruledit: error: ${e.message}\n`);
    process.exitCode = 2;
  } else {
    throw e;
  }
}
