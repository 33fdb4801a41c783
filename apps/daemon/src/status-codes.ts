// The one place where library errors become gRPC statuses. Codes map to
// codes; messages pass through untouched, never parsed. A failure a client
// acts on differently from others of its code also carries a reason in the
// trailing metadata (`jobber-reason`), so clients never parse messages either.
import { Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { type ErrorCode, JobberError } from "@jobber/jobber";
import { REASON_KEY } from "@jobber/proto";
import { IdentityError, type IdentityErrorCode } from "./identity-error";

const GRPC_STATUS: Record<ErrorCode, status> = {
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  NOT_FOUND: status.NOT_FOUND,
  FAILED_PRECONDITION: status.FAILED_PRECONDITION,
  RESOURCE_EXHAUSTED: status.RESOURCE_EXHAUSTED,
  INTERNAL: status.INTERNAL,
};

const IDENTITY_STATUS: Record<IdentityErrorCode, status> = {
  UNAUTHENTICATED: status.UNAUTHENTICATED,
  FAILED_PRECONDITION: status.FAILED_PRECONDITION,
  ALREADY_EXISTS: status.ALREADY_EXISTS,
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
};

/** An error a handler may throw to answer with exactly this status (and reason, and metadata). */
export class RpcError extends Error {
  constructor(
    readonly code: status,
    message: string,
    readonly reason?: string,
    readonly extra: Record<string, string> = {},
  ) {
    super(message);
  }
}

function withReason(
  code: status,
  details: string,
  reason: string | undefined,
  extra: Record<string, string> = {},
): Partial<ServiceError> & { code: status } {
  if (reason === undefined) return { code, details };
  const metadata = new Metadata();
  metadata.set(REASON_KEY, reason);
  for (const [key, value] of Object.entries(extra)) metadata.set(key, value);
  return { code, details, metadata };
}

export function toServiceError(error: unknown): Partial<ServiceError> & { code: status } {
  if (error instanceof RpcError) return withReason(error.code, error.message, error.reason, error.extra);
  if (error instanceof JobberError) {
    return withReason(GRPC_STATUS[error.code], error.message, error.reason);
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
