// Errors are values with a code. Each layer has one error class; the daemon
// maps codes to gRPC status codes in one table and never parses messages.

export type ErrorCode =
  | "INVALID_ARGUMENT"
  | "NOT_FOUND"
  | "FAILED_PRECONDITION"
  | "PERMISSION_DENIED"
  | "RESOURCE_EXHAUSTED"
  | "INTERNAL";

/**
 * Why, for the few failures a client acts on differently from others of the
 * same code: a program that is missing (a shell's 127) or not executable (126).
 */
export type ErrorReason = "COMMAND_NOT_FOUND" | "NOT_EXECUTABLE";

export interface CodedErrorOptions extends ErrorOptions {
  reason?: ErrorReason;
}

abstract class CodedError extends Error {
  readonly reason?: ErrorReason;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: CodedErrorOptions,
  ) {
    super(message, options);
    this.reason = options?.reason;
  }
}

/** A failure about a job: bad argv or limits, unknown id, wrong state, a quota reached, a failed launch. */
export class JobError extends CodedError {
  override readonly name = "JobError";
}

/** A failure about certificates or the pool: unparsable PEM, unreadable pool. */
export class CertificateError extends CodedError {
  override readonly name = "CertificateError";
}

/** A failure of the daemon's own configuration or host: not root, unsafe directories, no cgroup v2. */
export class SetupError extends CodedError {
  override readonly name = "SetupError";
}

export function errnoCode(error: unknown): string | undefined {
  return typeof error === "object" && error !== null && "code" in error ? String(error.code) : undefined;
}
