/**
 * A mistake the user can fix (bad path, corrupt file, unsupported pattern, wrong spec).
 * The CLI prints `message` without a stack trace and exits with code 2; anything else is a bug.
 */
export class RuleditError extends Error {
  constructor(
    /** Stable machine-readable kind, e.g. 'not-found', 'not-onnx', 'bad-image'. */
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'RuleditError';
  }
}

export function isRuleditError(e: unknown): e is RuleditError {
  return e instanceof RuleditError;
}
