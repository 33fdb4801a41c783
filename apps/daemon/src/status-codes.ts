// The one place where library errors become gRPC statuses. Codes map to
// codes; messages pass through untouched, never parsed.
import { type ServiceError, status } from "@grpc/grpc-js";
import { CertificateError, type ErrorCode, JobError } from "@jobber/jobber";
import { IdentityError, type IdentityErrorCode } from "./identity-error";

const GRPC_STATUS: Record<ErrorCode, status> = {
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  NOT_FOUND: status.NOT_FOUND,
  FAILED_PRECONDITION: status.FAILED_PRECONDITION,
  PERMISSION_DENIED: status.PERMISSION_DENIED,
  RESOURCE_EXHAUSTED: status.RESOURCE_EXHAUSTED,
  INTERNAL: status.INTERNAL,
};

const IDENTITY_STATUS: Record<IdentityErrorCode, status> = {
  UNAUTHENTICATED: status.UNAUTHENTICATED,
  FAILED_PRECONDITION: status.FAILED_PRECONDITION,
  ALREADY_EXISTS: status.ALREADY_EXISTS,
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
};

/** An error a handler may throw to answer with exactly this status. */
export class RpcError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
  }
}

export function toServiceError(error: unknown): Partial<ServiceError> & { code: status } {
  if (error instanceof RpcError) return { code: error.code, details: error.message };
  if (error instanceof JobError || error instanceof CertificateError) {
    return { code: GRPC_STATUS[error.code], details: error.message };
  }
  if (error instanceof IdentityError) return { code: IDENTITY_STATUS[error.code], details: error.message };
  // Not the caller's fault, and not something we expected: say what happened
  // so the operator can act, without a stack trace.
  const detail = error instanceof Error ? error.message : String(error);
  return { code: status.INTERNAL, details: `internal error: ${detail}; see the jobberd log` };
}

export function statusName(code: status): string {
  return status[code] ?? String(code);
}
