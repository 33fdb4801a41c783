// Every failure as one line that says what went wrong and what to do next.
// gRPC status codes decide the wording; the daemon's details are sentences
// written for people and pass through as they are.
import { ClientIdentityError, REASON_KEY, Status } from "@jobber/proto";
import { UsageError } from "./failure";
import { FollowLostError } from "./follow";
import { STANDARD_RETRY, totalSeconds } from "./retry";

/** Where jb was talking to, for the hints. */
export interface Target {
  addr: string;
  home: string;
}

interface ServiceErrorLike {
  code: number;
  details: string;
  metadata?: { get(key: string): unknown[] };
}

/** The one-word reason jobberd attaches to some failures (trailing metadata `jobber-reason`). */
export function reasonOf(error: unknown): string | undefined {
  return metadataValue(error, REASON_KEY);
}

/** A value of the failure's trailing metadata. */
export function metadataValue(error: unknown, key: string): string | undefined {
  if (!isServiceError(error)) return undefined;
  const metadata = error.metadata;
  const value = typeof metadata?.get === "function" ? metadata.get(key)[0] : undefined;
  return typeof value === "string" ? value : undefined;
}

function isServiceError(error: unknown): error is ServiceErrorLike {
  return (
    typeof error === "object" &&
    error !== null &&
    typeof (error as ServiceErrorLike).code === "number" &&
    typeof (error as ServiceErrorLike).details === "string"
  );
}

/**
 * grpc-js reports a failed connection as UNAVAILABLE with the socket's error
 * inside its details ("No connection established. Last error: Error: connect
 * ECONNREFUSED 127.0.0.1:1. Resolution note: "); the status carries no other
 * field for it, so this is the one place that reads the text.
 */
function connectionCause(details: string): string {
  const last = /Last error: (?:Error: )?(.*?)\.?(?: Resolution note:.*)?$/s.exec(details);
  return (last?.[1] ?? details).trim();
}

function isTlsFailure(cause: string): boolean {
  return /certificate|self[- ]signed|verify|altnames|handshake|ssl|tls/i.test(cause);
}

/** One line for stderr: what failed and what to do about it. */
export function describeError(error: unknown, target: Target): string {
  if (error instanceof UsageError) return error.message;
  if (error instanceof FollowLostError) {
    const cause = isServiceError(error.cause) ? connectionCause(error.cause.details) : String(error.cause);
    return `lost jobberd at ${target.addr} after ${error.offset} bytes and could not reconnect within ${totalSeconds(STANDARD_RETRY)} s (${cause}); the job may still be running: jb status, then jb log -f again`;
  }
  if (error instanceof ClientIdentityError) {
    return `${error.message}; point --home or JOBBER_HOME at a client home`;
  }
  if (!isServiceError(error)) {
    return error instanceof Error ? error.message : String(error);
  }
  const { code, details } = error;
  switch (code) {
    case Status.UNAVAILABLE: {
      const cause = connectionCause(details);
      if (isTlsFailure(cause)) {
        return `TLS with jobberd at ${target.addr} failed (${cause}): check that ${target.home}/ca.crt is the CA of that server's certificate and --addr names it`;
      }
      return `cannot reach jobberd at ${target.addr} (${cause}): is it running? start it with: sudo ./scripts/bun run jobberd in a checkout (or point --addr / JOBBER_ADDR at it)`;
    }
    case Status.DEADLINE_EXCEEDED:
      return `jobberd at ${target.addr} did not answer in time: is it running and reachable? (--addr / JOBBER_ADDR)`;
    case Status.UNAUTHENTICATED:
      return `jobberd at ${target.addr} did not accept the certificate in ${target.home}: ${details}`;
    case Status.PERMISSION_DENIED:
      return `not allowed: ${details}`;
    case Status.NOT_FOUND:
      return `${details}; jb list shows your jobs`;
    case Status.FAILED_PRECONDITION:
      return `${details}; jb list shows your jobs and how they ended`;
    case Status.INVALID_ARGUMENT:
    case Status.ALREADY_EXISTS:
      return details;
    case Status.RESOURCE_EXHAUSTED:
      // The message names the quota and its value.
      return `jobberd refused: ${details}`;
    case Status.INTERNAL:
    case Status.UNKNOWN:
      return `jobberd failed: ${details}`;
    case Status.UNIMPLEMENTED:
      return `jobberd at ${target.addr} does not know this call (${details}): is it an older version?`;
    case Status.CANCELLED:
      return `the call was cancelled: ${details}`;
    default:
      return `jobberd answered with status ${code}: ${details}`;
  }
}

/** A failure about one job (it is unknown, or in the wrong state), not about the connection. */
export function isJobFailure(error: unknown): boolean {
  return (
    isServiceError(error) && (error.code === Status.NOT_FOUND || error.code === Status.FAILED_PRECONDITION)
  );
}

/**
 * The exit status for a failure: 2 for a mistake in how jb was called; like
 * `docker run`, 127 when the program does not exist and 126 when it cannot
 * be executed; else 1.
 */
export function exitStatusOf(error: unknown): number {
  if (error instanceof UsageError) return error.exitStatus;
  const reason = reasonOf(error);
  if (reason === "COMMAND_NOT_FOUND") return 127;
  if (reason === "NOT_EXECUTABLE") return 126;
  return 1;
}
