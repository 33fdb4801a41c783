// Client certificates that must be refused (or, self-signed, pinned), for the
// authentication tests. Each is made fresh, so a test never depends on another.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  certificateHash,
  createIdentity,
  homePaths,
  type IdentityRequest,
  loadCertificateAuthority,
} from "../src/pki";
import { x509 } from "../src/x509";

export interface TestIdentity {
  certPem: string;
  keyPem: string;
  /** The tenant id the daemon would give it. */
  hash: string;
}

const DAY_MS = 24 * 60 * 60 * 1000;

async function make(request: IdentityRequest): Promise<TestIdentity> {
  const identity = await createIdentity(request);
  return {
    certPem: identity.certPem,
    keyPem: identity.keyPem,
    hash: certificateHash(new Uint8Array(identity.cert.rawData)),
  };
}

/** A self-signed client certificate, to be pinned by putting it in the pool. */
export function selfSignedClient(): Promise<TestIdentity> {
  return make({ profile: "client", commonName: "pinned test client" });
}

/** A client certificate issued by the home's CA whose validity ended yesterday. */
export async function expiredClient(home: string): Promise<TestIdentity> {
  const now = Date.now();
  return make({
    profile: "client",
    commonName: "expired test client",
    issuer: await loadCertificateAuthority(home),
    notBefore: new Date(now - 2 * DAY_MS),
    notAfter: new Date(now - DAY_MS),
  });
}

/** A client certificate issued by the home's CA whose validity starts tomorrow. */
export async function notYetValidClient(home: string): Promise<TestIdentity> {
  const now = Date.now();
  return make({
    profile: "client",
    commonName: "future test client",
    issuer: await loadCertificateAuthority(home),
    notBefore: new Date(now + DAY_MS),
    notAfter: new Date(now + 2 * DAY_MS),
  });
}

/** A certificate issued by the home's CA for servers only (serverAuth EKU, no clientAuth). */
export async function serverAuthOnlyClient(home: string): Promise<TestIdentity> {
  return make({
    profile: "client",
    commonName: "server-only test certificate",
    issuer: await loadCertificateAuthority(home),
    extendedKeyUsages: [x509.ExtendedKeyUsage.serverAuth],
  });
}

/** A client certificate issued by a CA that is not the home's. */
export async function foreignCaClient(): Promise<TestIdentity> {
  const foreignCa = await createIdentity({ profile: "ca", commonName: "foreign test CA" });
  return make({ profile: "client", commonName: "foreign test client", issuer: foreignCa });
}

/** Lets a certificate in (once the Authenticator reloads). */
export async function addToPool(home: string, name: string, certPem: string): Promise<void> {
  await writeFile(join(homePaths(home).pool, `${name}.crt`), certPem);
}
