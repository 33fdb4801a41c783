// Errors are values with a code. Each layer has one error class; the daemon
// maps codes to gRPC status codes in one table and never parses messages.

export type ErrorCode =
  | "INVALID_ARGUMENT"
  | "NOT_FOUND"
  | "FAILED_PRECONDITION"
  | "PERMISSION_DENIED"
  | "RESOURCE_EXHAUSTED"
  | "INTERNAL";

abstract class CodedError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
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
