// Who is calling: the client certificate of a call, checked against the pool.
//
// A client is let in iff its certificate is in the pool (by SHA-256 of its
// DER), verifies (self-signed, pinned as its own anchor, or issued by ca.crt),
// has the clientAuth extended key usage and is within its validity dates.
// The handshake accepts any certificate (see tls.ts), so this is the check.
import { X509Certificate } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { TLSSocket } from "node:tls";
// grpc-js does not re-export the type every server call shares; a type-only import is erased at run time.
import type { ServerSurfaceCall } from "@grpc/grpc-js/build/src/server-call";
import { type AuthenticationFailure, IdentityError } from "./identity-error";
import { certificateHash, homePaths } from "./pki";

const CLIENT_AUTH_USAGE = "1.3.6.1.5.5.7.3.2";
const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

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
   * The tenant id of the caller: the lowercase hex SHA-256 of its certificate's
   * DER. Throws an IdentityError with code UNAUTHENTICATED and a reason.
   */
  authenticate(call: ServerSurfaceCall): string {
    return this.authenticatePeer(call).tenant;
  }

  /** `authenticate`, also returning the certificate's DER (for the job library's tenant). */
  authenticatePeer(call: ServerSurfaceCall): { tenant: string; der: Uint8Array } {
    const der = peerCertificateOf(call);
    const tenant = this.authenticateCertificate(der);
    // authenticateCertificate refuses a call without a certificate, so der is set here.
    return { tenant, der: der as Uint8Array };
  }

  /** `authenticate` for a certificate already in hand (DER), at time `now`. */
  authenticateCertificate(der: Uint8Array | undefined, now: Date = new Date()): string {
    if (der === undefined || der.length === 0) {
      throw refused(
        "NO_CERTIFICATE",
        "no client certificate was presented; connect with the client.crt and client.key of a jobber home",
      );
    }
    const hash = certificateHash(der);
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
    return hash;
  }
}

function refused(reason: AuthenticationFailure, message: string): IdentityError {
  return new IdentityError("UNAUTHENTICATED", message, reason);
}

async function loadPool(home: string): Promise<Map<string, PoolEntry>> {
  const paths = homePaths(home);
  const ca = await readCertificateIfPresent(paths.caCert);
  const files = (await readdirIfPresent(paths.pool)).filter((name) => /\.(crt|pem)$/.test(name)).sort();
  const pool = new Map<string, PoolEntry>();
  for (const name of files) {
    const file = join(paths.pool, name);
    const pems = (await readFile(file, "utf8")).match(PEM_CERTIFICATE) ?? [];
    if (pems.length === 0) {
      throw new IdentityError("FAILED_PRECONDITION", `${file} holds no PEM certificate; fix or remove it`);
    }
    for (const pem of pems) {
      let cert: X509Certificate;
      try {
        cert = new X509Certificate(pem);
      } catch (error) {
        throw new IdentityError(
          "FAILED_PRECONDITION",
          `${file}: not a valid certificate: ${(error as Error).message}`,
        );
      }
      pool.set(certificateHash(cert.raw), {
        notBefore: cert.validFromDate,
        notAfter: cert.validToDate,
        defect: findDefect(cert, ca, name),
      });
    }
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
export function peerCertificateOf(call: ServerSurfaceCall): Uint8Array | undefined {
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

async function readdirIfPresent(path: string): Promise<string[]> {
  try {
    return await readdir(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
}
