// The error of the daemon's identity layer: PKI bootstrap, issuing client
// identities, authenticating callers. (Not @jobber/jobber's JobberError,
// which is about jobs and the job library's view of tenants.) The code is the gRPC
// status name it maps to at the boundary; the message says what a person
// should do about it.

export type IdentityErrorCode =
  /** The peer is not let in; `reason` says why. */
  | "UNAUTHENTICATED"
  /** A file or directory is in a state we refuse to work with (partial home, symlink, no CA key). */
  | "FAILED_PRECONDITION"
  /** We would have to overwrite something that exists. */
  | "ALREADY_EXISTS"
  /** A caller-supplied value (such as an identity name) is unusable. */
  | "INVALID_ARGUMENT";

/** Why a client certificate was refused. */
export type AuthenticationFailure =
  | "NO_CERTIFICATE"
  | "NOT_IN_POOL"
  | "EXPIRED"
  | "NOT_YET_VALID"
  | "NO_CLIENT_AUTH_USAGE"
  | "UNTRUSTED_SIGNATURE";

export class IdentityError extends Error {
  override readonly name = "IdentityError";

  constructor(
    readonly code: IdentityErrorCode,
    message: string,
    /** Set when code is UNAUTHENTICATED. */
    readonly reason?: AuthenticationFailure,
  ) {
    super(message);
  }
}
