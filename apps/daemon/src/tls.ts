// Server-side TLS for jobberd: TLS 1.3 only, ECDHE over X25519 or P-256,
// and a client certificate requested but judged per call by Authenticator.
import { readFile } from "node:fs/promises";
import type { SecureServerOptions } from "node:http2";
import { ServerCredentials } from "@grpc/grpc-js";
import { homePaths } from "./pki";

/**
 * Options of the TLS listener. TLS 1.3 defines only AEAD suites, so pinning the
 * version also pins AEAD; `ciphers` names them for Node, while Bun (BoringSSL)
 * ignores it for TLS 1.3 and offers the same three.
 */
const SERVER_TLS_OPTIONS = {
  minVersion: "TLSv1.3",
  maxVersion: "TLSv1.3",
  ecdhCurve: "X25519:P-256",
  ciphers: "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256",
  // Ask every client for its certificate, but let the handshake finish whatever
  // it sends: the original plan wants a refused client to get UNAUTHENTICATED naming the
  // reason, which only a completed connection can carry. Authenticator decides
  // on every call.
  requestCert: true,
  rejectUnauthorized: false,
} as const satisfies SecureServerOptions;

export interface ServerKeyPair {
  /** PEM private key (PKCS#8 or SEC1). */
  key: Buffer;
  /** PEM certificate chain, leaf first. */
  cert: Buffer;
}

/**
 * grpc-js credentials carrying our own TLS options. `ServerCredentials.createSsl`
 * has no way to set the protocol version or groups; grpc-js 1.14's Server builds
 * its listener from `_getConstructorOptions()` merged with
 * `_getSecureContextOptions()`, which are the two arguments of this
 * (public, abstract) base class's constructor.
 */
class Tls13ServerCredentials extends ServerCredentials {
  constructor(private readonly keyPair: ServerKeyPair) {
    super({ ...SERVER_TLS_OPTIONS }, { key: keyPair.key, cert: keyPair.cert });
  }

  override _equals(other: ServerCredentials): boolean {
    return (
      other instanceof Tls13ServerCredentials &&
      other.keyPair.key.equals(this.keyPair.key) &&
      other.keyPair.cert.equals(this.keyPair.cert)
    );
  }
}

/** Server credentials for a key pair in memory. */
export function createServerCredentials(keyPair: ServerKeyPair): ServerCredentials {
  return new Tls13ServerCredentials(keyPair);
}

/** Server credentials from `<home>/server.key` and `<home>/server.crt`. */
export async function loadServerCredentials(home: string): Promise<ServerCredentials> {
  const paths = homePaths(home);
  const [key, cert] = await Promise.all([readFile(paths.serverKey), readFile(paths.serverCert)]);
  return createServerCredentials({ key, cert });
}
