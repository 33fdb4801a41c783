// The two errors jb words itself. main.ts catches both and prints their
// message as one line; neither needs gRPC loaded to be recognised.

/** A mistake in how jb was called; the message says how to call it right. Exit status 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
  readonly exitStatus = 2;
}

/** A failure already put into one line (see errors.ts), with the exit status it calls for. */
export class Failure extends Error {
  override readonly name = "Failure";
  constructor(
    message: string,
    readonly exitStatus: number,
  ) {
    super(message);
  }
}
