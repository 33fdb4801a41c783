// Who is calling: the client certificate of a call, checked against the pool.
//
// A client is let in iff its certificate is in the pool (by SHA-256 of its
// DER), verifies (self-signed, pinned as its own anchor, or issued by ca.crt),
// has the clientAuth extended key usage and is within its validity dates.
// The handshake accepts any certificate (see tls.ts), so this is the check.
import { X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { TLSSocket } from "node:tls";
import { readPool } from "@jobber/jobber";
import { type AuthenticationFailure, IdentityError } from "./identity-error";
import { certificateHash, homePaths } from "./pki";
import type { ServerSurfaceCall } from "./server-call";

const CLIENT_AUTH_USAGE = "1.3.6.1.5.5.7.3.2";

interface PoolEntry {
  notBefore: Date;
  notAfter: Date;
  /** Why this certificate can never be let in, found when the pool was loaded. */
  defect?: { reason: AuthenticationFailure; message: string };
}

export class Authenticator {
  private generation = 0;

  private constructor(
    private readonly home: string,
    private pool: Map<string, PoolEntry>,
  ) {}

  /** Reads `<home>/pool/*.crt|*.pem` and `<home>/ca.crt` (if present). */
  static async fromHome(home: string): Promise<Authenticator> {
    return new Authenticator(home, await loadPool(home));
  }

  /**
   * Re-reads the pool; on error the previous pool stays in force. Of
   * overlapping reloads the last one started wins, so a certificate removed
   * between two reloads cannot come back with the older one.
   */
  async reload(): Promise<void> {
    const generation = ++this.generation;
    const pool = await loadPool(this.home);
    if (generation === this.generation) this.pool = pool;
  }

  /** Number of certificates in the pool. */
  get poolSize(): number {
    return this.pool.size;
  }

  /**
   * The caller's tenant, made by `tenantOf` from the DER of the certificate it
   * presented and let in iff that tenant's hash (the lowercase hex SHA-256 of
   * the DER) is in the pool and valid now: the certificate is hashed once per
   * call, by whoever makes the tenant. Throws an IdentityError with code
   * UNAUTHENTICATED and a reason.
   */
  authenticate<T extends { hash(): string }>(call: ServerSurfaceCall, tenantOf: (der: Uint8Array) => T): T {
    const der = presentedCertificate(peerCertificateOf(call));
    const tenant = tenantOf(der);
    this.admit(tenant.hash(), new Date());
    return tenant;
  }

  /** `authenticate` for a certificate already in hand (DER), at time `now`. */
  authenticateCertificate(der: Uint8Array | undefined, now: Date = new Date()): string {
    const hash = certificateHash(presentedCertificate(der));
    this.admit(hash, now);
    return hash;
  }

  /** Lets in the tenant of this hash at time `now`, or says why not. */
  private admit(hash: string, now: Date): void {
    const entry = this.pool.get(hash);
    if (entry === undefined) {
      throw refused(
        "NOT_IN_POOL",
        `client certificate ${hash} is not in the server's pool; ask the operator to add it to <home>/pool/`,
      );
    }
    if (entry.defect) throw refused(entry.defect.reason, entry.defect.message);
    if (now < entry.notBefore) {
      throw refused(
        "NOT_YET_VALID",
        `client certificate is not valid before ${entry.notBefore.toISOString()}`,
      );
    }
    if (now > entry.notAfter) {
      throw refused(
        "EXPIRED",
        `client certificate expired at ${entry.notAfter.toISOString()}; get a new one from the operator`,
      );
    }
  }
}

/** The DER the caller presented, or the refusal of a caller that presented none. */
function presentedCertificate(der: Uint8Array | undefined): Uint8Array {
  if (der === undefined || der.length === 0) {
    throw refused(
      "NO_CERTIFICATE",
      "no client certificate was presented; connect with the client.crt and client.key of a jobber home",
    );
  }
  return der;
}

function refused(reason: AuthenticationFailure, message: string): IdentityError {
  return new IdentityError("UNAUTHENTICATED", message, reason);
}

async function loadPool(home: string): Promise<Map<string, PoolEntry>> {
  const paths = homePaths(home);
  const ca = await readCertificateIfPresent(paths.caCert);
  const pool = new Map<string, PoolEntry>();
  for (const { file, certificate } of await readPool(paths.pool)) {
    pool.set(certificateHash(certificate.raw), {
      notBefore: certificate.validFromDate,
      notAfter: certificate.validToDate,
      defect: findDefect(certificate, ca, file),
    });
  }
  return pool;
}

/** What makes a pool certificate unusable whatever the date: signature or purpose. */
function findDefect(
  cert: X509Certificate,
  ca: X509Certificate | undefined,
  file: string,
): PoolEntry["defect"] {
  const selfSigned = cert.issuer === cert.subject && cert.verify(cert.publicKey);
  const issuedByCa = ca !== undefined && cert.checkIssued(ca) && cert.verify(ca.publicKey);
  if (!selfSigned && !issuedByCa) {
    return {
      reason: "UNTRUSTED_SIGNATURE",
      message: `client certificate (pool/${file}) is neither self-signed nor issued by the server's ca.crt: its signature does not verify`,
    };
  }
  // Node's (and Bun's) X509Certificate names the extended key usages `keyUsage`.
  if (!(cert.keyUsage ?? []).includes(CLIENT_AUTH_USAGE)) {
    return {
      reason: "NO_CLIENT_AUTH_USAGE",
      message: `client certificate (pool/${file}) lacks the clientAuth extended key usage; issue one with extendedKeyUsage=clientAuth`,
    };
  }
  return undefined;
}

/**
 * The DER of the certificate the peer presented on the call's connection.
 *
 * grpc-js's public `call.getAuthContext()` returns the peer certificate only
 * when the TLS layer itself verified it (`socket.authorized`), which it never
 * does here: the handshake accepts any certificate so that refusals carry a
 * reason (tls.ts). So this follows grpc-js 1.14's links to the socket: the
 * surface call's `call` (wrapped in `nextCall`s when there are interceptors)
 * down to BaseServerInterceptingCall's `stream`, whose HTTP/2 session's
 * `socket` is the TLSSocket (in Bun too). tls.test.ts breaks if an upgrade
 * moves them; until then this fails closed: no socket, no certificate.
 */
function peerCertificateOf(call: ServerSurfaceCall): Uint8Array | undefined {
  let inner: unknown = (call as { call?: unknown }).call;
  for (let depth = 0; inner !== null && typeof inner === "object" && depth < 32; depth++) {
    const socket = (inner as { stream?: { session?: { socket?: unknown } } }).stream?.session?.socket;
    if (socket instanceof TLSSocket) {
      // With no certificate, Bun returns {} and Node returns {} or null.
      const raw = socket.getPeerCertificate(false)?.raw;
      return raw && raw.length > 0 ? raw : undefined;
    }
    inner = (inner as { nextCall?: unknown }).nextCall;
  }
  return undefined;
}

async function readCertificateIfPresent(path: string): Promise<X509Certificate | undefined> {
  let pem: string;
  try {
    pem = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  return new X509Certificate(pem);
}
