// Errors are values with a code. Each layer has one error class; the daemon
// maps codes to gRPC status codes in one table and never parses messages.

export type ErrorCode =
  /** The caller asked for something unusable: bad argv, limits, certificate. */
  | "INVALID_ARGUMENT"
  /** No such job for this tenant (another tenant's job is not found either). */
  | "NOT_FOUND"
  /** Not in this state: a job already started or finished, an unsafe directory, no usable cgroups. */
  | "FAILED_PRECONDITION"
  /** A quota or the host's room is used up. */
  | "RESOURCE_EXHAUSTED"
  /** The host failed us: a file we cannot read or write, a launch that went wrong. */
  | "INTERNAL";

/**
 * Why, for the few failures a client acts on differently from others of the
 * same code: a program that is missing (a shell's 127) or not executable (126).
 */
export type ErrorReason = "COMMAND_NOT_FOUND" | "NOT_EXECUTABLE";

export interface JobberErrorOptions extends ErrorOptions {
  reason?: ErrorReason;
}

/**
 * The library's one error: about a job (bad argv or limits, unknown id, wrong
 * state, a quota reached, a failed launch), a certificate or the pool, or the
 * host's setup (unsafe directories, no usable cgroups). The code says which
 * kind; the message says what a person can do about it.
 */
export class JobberError extends Error {
  override readonly name = "JobberError";
  readonly reason?: ErrorReason;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: JobberErrorOptions,
  ) {
    super(message, options);
    this.reason = options?.reason;
  }
}

export function errnoCode(error: unknown): string | undefined {
  return typeof error === "object" && error !== null && "code" in error ? String(error.code) : undefined;
}
