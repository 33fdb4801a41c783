// The jobber PKI: a home directory's CA, server certificate and client
// identities, made with WebCrypto (ECDSA P-256, SHA-256) and @peculiar/x509.
//
// Home layout (docs/design.md): ca.crt (+ ca.key when jobberd made it),
// server.crt + server.key, pool/*.crt (the clients let in), and the client
// side's own client.crt + client.key.
import { X509Certificate as NodeX509Certificate } from "node:crypto";
import { constants } from "node:fs";
import { access, chmod, lchown, lstat, open, readFile, writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import { hostname } from "node:os";
import { join } from "node:path";
import { ensurePrivateDir } from "@jobber/jobber";
import type { X509Certificate } from "@peculiar/x509";
import { IdentityError } from "./identity-error";
import { x509 } from "./x509";

const KEY_ALGORITHM = { name: "ECDSA", namedCurve: "P-256" };
const SIGNING_ALGORITHM = { name: "ECDSA", hash: "SHA-256" };

const DAY_MS = 24 * 60 * 60 * 1000;
const CA_LIFETIME_DAYS = 3650;
const LEAF_LIFETIME_DAYS = 825;
// Certificates start a little in the past so that a client whose clock runs
// slightly behind the daemon's does not see a not-yet-valid certificate.
const CLOCK_SKEW_MS = 5 * 60 * 1000;

const PRIVATE_FILE_MODE = 0o600;
const PUBLIC_FILE_MODE = 0o644;

/** Paths of the files in a jobber home. */
export function homePaths(home: string) {
  return {
    caCert: join(home, "ca.crt"),
    caKey: join(home, "ca.key"),
    serverCert: join(home, "server.crt"),
    serverKey: join(home, "server.key"),
    clientCert: join(home, "client.crt"),
    clientKey: join(home, "client.key"),
    pool: join(home, "pool"),
  };
}

/** A certificate with its private key, in memory and as PEM. */
export interface Identity {
  cert: X509Certificate;
  privateKey: CryptoKey;
  certPem: string;
  keyPem: string;
}

export type CertificateProfile = "ca" | "server" | "client";

export interface IdentityRequest {
  profile: CertificateProfile;
  commonName: string;
  /** The CA that signs the certificate; without one it is self-signed. */
  issuer?: Identity;
  /** Server profile: SAN entries. */
  dnsNames?: string[];
  ipAddresses?: string[];
  notBefore?: Date;
  notAfter?: Date;
  /** Replaces the profile's extended key usages (tests make wrong-purpose certificates with it). */
  extendedKeyUsages?: string[];
}

/** Makes a new ECDSA P-256 key pair and a certificate for it. */
export async function createIdentity(request: IdentityRequest): Promise<Identity> {
  const keys = (await crypto.subtle.generateKey(KEY_ALGORITHM, true, ["sign", "verify"])) as CryptoKeyPair;
  const now = Date.now();
  const lifetimeDays = request.profile === "ca" ? CA_LIFETIME_DAYS : LEAF_LIFETIME_DAYS;
  const notBefore = request.notBefore ?? new Date(now - CLOCK_SKEW_MS);
  const notAfter = request.notAfter ?? new Date(now + lifetimeDays * DAY_MS);
  const subject = [{ CN: [request.commonName] }];
  const extensions = await profileExtensions(request, keys.publicKey);
  const common = {
    serialNumber: randomSerialNumber(),
    notBefore,
    notAfter,
    extensions,
    signingAlgorithm: SIGNING_ALGORITHM,
  };

  const cert = request.issuer
    ? await x509.X509CertificateGenerator.create({
        ...common,
        subject,
        issuer: request.issuer.cert.subjectName,
        publicKey: keys.publicKey,
        signingKey: request.issuer.privateKey,
      })
    : await x509.X509CertificateGenerator.createSelfSigned({ ...common, name: subject, keys });

  return {
    cert,
    privateKey: keys.privateKey,
    certPem: cert.toString("pem"),
    keyPem: await privateKeyToPem(keys.privateKey),
  };
}

async function profileExtensions(request: IdentityRequest, publicKey: CryptoKey) {
  const { ExtendedKeyUsage, KeyUsageFlags } = x509;
  const isCa = request.profile === "ca";
  const extensions: InstanceType<typeof x509.Extension>[] = [
    new x509.BasicConstraintsExtension(isCa, isCa ? 0 : undefined, true),
    new x509.KeyUsagesExtension(
      isCa ? KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign : KeyUsageFlags.digitalSignature,
      true,
    ),
    await x509.SubjectKeyIdentifierExtension.create(publicKey),
  ];
  if (request.issuer) {
    extensions.push(await x509.AuthorityKeyIdentifierExtension.create(request.issuer.cert.publicKey));
  }
  const profileUsages = {
    ca: [],
    server: [ExtendedKeyUsage.serverAuth],
    client: [ExtendedKeyUsage.clientAuth],
  };
  const usages = request.extendedKeyUsages ?? profileUsages[request.profile];
  if (usages.length > 0) extensions.push(new x509.ExtendedKeyUsageExtension(usages));

  const names = [
    ...(request.dnsNames ?? []).map((value) => ({ type: "dns" as const, value })),
    ...(request.ipAddresses ?? []).map((value) => ({ type: "ip" as const, value })),
  ];
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names));
  return extensions;
}

/** 16 random bytes with the top bit clear: a positive DER INTEGER, unguessable as RFC 5280 advises. */
function randomSerialNumber(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return Buffer.from(bytes).toString("hex");
}

async function privateKeyToPem(privateKey: CryptoKey): Promise<string> {
  // PKCS#8 "PRIVATE KEY" is the format node:tls (and Bun's) reads for any key type.
  return x509.PemConverter.encode(await crypto.subtle.exportKey("pkcs8", privateKey), "PRIVATE KEY");
}

/** Lowercase hex SHA-256 of a certificate's DER: the tenant id of a client certificate. */
export function certificateHash(der: Uint8Array): string {
  return new Bun.CryptoHasher("sha256").update(der).digest("hex");
}

const DNS_NAME = /^(\*\.)?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/** `--san` values split into DNS names and IP addresses; anything else is refused. */
function splitServerNames(names: readonly string[]): { dnsNames: string[]; ipAddresses: string[] } {
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  for (const name of names) {
    if (isIP(name) !== 0) ipAddresses.push(name);
    else if (DNS_NAME.test(name) && name.length <= 253) dnsNames.push(name.toLowerCase());
    else {
      throw new IdentityError(
        "INVALID_ARGUMENT",
        `--san ${JSON.stringify(name)} is neither a DNS name (e.g. jobs.example.com) nor an IP address`,
      );
    }
  }
  return { dnsNames, ipAddresses };
}

/** Of `names`, those the home's server certificate does not cover (they were asked for after it was made). */
export async function missingServerNames(home: string, names: readonly string[]): Promise<string[]> {
  if (names.length === 0) return [];
  const { dnsNames, ipAddresses } = splitServerNames(names);
  const cert = new NodeX509Certificate(await readFile(homePaths(home).serverCert));
  return [
    ...dnsNames.filter((name) => cert.checkHost(name, { wildcards: false }) === undefined),
    ...ipAddresses.filter((ip) => cert.checkIP(ip) === undefined),
  ];
}

/**
 * Creates `home` as a complete PKI when it has no server certificate: a CA, a
 * server certificate for this machine (localhost, the host name, loopback,
 * and `extraNames`: DNS names and IP addresses), and a first client identity
 * that is added to the pool. A home that has a server certificate is left as it is.
 */
export async function bootstrapHome(
  home: string,
  extraNames: readonly string[] = [],
): Promise<{ created: boolean }> {
  const extra = splitServerNames(extraNames);
  const paths = homePaths(home);
  ensurePrivateDir(home, "home directory");
  if (await exists(paths.serverCert)) return { created: false };

  const firstClientInPool = join(paths.pool, "client.crt");
  const planned = [
    paths.caCert,
    paths.caKey,
    paths.serverKey,
    paths.clientCert,
    paths.clientKey,
    firstClientInPool,
  ];
  const present = (
    await Promise.all(planned.map(async (path) => ((await exists(path)) ? path : null)))
  ).filter((path) => path !== null);
  if (present.length > 0) {
    throw new IdentityError(
      "FAILED_PRECONDITION",
      `${home} has no server.crt but already has ${present.join(", ")}; jobberd will not overwrite them. ` +
        "Add a server.crt and server.key issued by your CA, or move these files away to let jobberd create a new PKI.",
    );
  }
  ensurePrivateDir(paths.pool, "client pool");

  const machineName = hostname();
  const ca = await createIdentity({ profile: "ca", commonName: `jobber CA (${machineName})` });
  const server = await createIdentity({
    profile: "server",
    commonName: machineName,
    issuer: ca,
    dnsNames: [...new Set(["localhost", machineName, ...extra.dnsNames].filter((name) => name !== ""))],
    ipAddresses: [...new Set(["127.0.0.1", "::1", ...extra.ipAddresses])],
  });
  const client = await createIdentity({ profile: "client", commonName: "jobber client", issuer: ca });

  await writeNewFile(paths.caKey, ca.keyPem, PRIVATE_FILE_MODE);
  await writeNewFile(paths.caCert, ca.certPem, PUBLIC_FILE_MODE);
  await writeNewFile(paths.clientKey, client.keyPem, PRIVATE_FILE_MODE);
  await writeNewFile(paths.clientCert, client.certPem, PUBLIC_FILE_MODE);
  await writeNewFile(firstClientInPool, client.certPem, PUBLIC_FILE_MODE);
  await writeNewFile(paths.serverKey, server.keyPem, PRIVATE_FILE_MODE);
  // server.crt goes last: its presence is what marks a home as complete.
  await writeNewFile(paths.serverCert, server.certPem, PUBLIC_FILE_MODE);
  return { created: true };
}

/** Loads the home's CA with its private key, for issuing certificates. */
export async function loadCertificateAuthority(home: string): Promise<Identity> {
  const paths = homePaths(home);
  if (!(await exists(paths.caKey))) {
    throw new IdentityError(
      "FAILED_PRECONDITION",
      `${home} has no ca.key: it uses its own PKI, so jobberd cannot issue certificates. ` +
        `Issue a client certificate (clientAuth extended key usage) with your CA and copy it into ${paths.pool}.`,
    );
  }
  const certPem = await readFile(paths.caCert, "utf8");
  const keyPem = await readFile(paths.caKey, "utf8");
  const cert = new x509.X509Certificate(certPem);
  let privateKey: CryptoKey;
  try {
    privateKey = await crypto.subtle.importKey(
      "pkcs8",
      x509.PemConverter.decodeFirst(keyPem),
      // The curve is the one of ca.crt's public key (P-256 for a CA jobberd made).
      cert.publicKey.algorithm as Parameters<typeof crypto.subtle.importKey>[2],
      true,
      ["sign"],
    );
  } catch (error) {
    throw new IdentityError(
      "FAILED_PRECONDITION",
      `${paths.caKey} is not a PKCS#8 ECDSA key matching ca.crt: ${(error as Error).message}`,
    );
  }
  return { cert, privateKey, certPem, keyPem };
}

const IDENTITY_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** A user a client identity is handed to. */
export interface Owner {
  uid: number;
  gid: number;
}

/**
 * Issues a new client identity signed by the home's CA. `outDir` becomes a
 * usable client home (client.crt, client.key, ca.crt) and the certificate is
 * let in by adding it to `<home>/pool/<name>.crt`. With `owner`, the
 * directory and its files belong to that user (still 0700 and 0600): the
 * person the identity is for can use it, nobody else can.
 */
export async function issueClientIdentity(
  home: string,
  name: string,
  outDir: string,
  owner?: Owner,
): Promise<{ certPath: string; keyPath: string; hash: string }> {
  if (!IDENTITY_NAME.test(name)) {
    throw new IdentityError(
      "INVALID_ARGUMENT",
      `identity name ${JSON.stringify(name)} must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  }
  const paths = homePaths(home);
  const poolPath = join(paths.pool, `${name}.crt`);
  const out = homePaths(outDir);
  for (const path of [poolPath, out.clientCert, out.clientKey, out.caCert]) {
    if (await exists(path)) {
      throw new IdentityError("ALREADY_EXISTS", `${path} already exists; choose another name or directory`);
    }
  }

  const ca = await loadCertificateAuthority(home);
  const client = await createIdentity({ profile: "client", commonName: `jobber client ${name}`, issuer: ca });
  if (!(await client.cert.verify({ publicKey: ca.cert.publicKey, signatureOnly: true }))) {
    throw new IdentityError("FAILED_PRECONDITION", `${paths.caKey} does not belong to ${paths.caCert}`);
  }

  const handOver = owner !== undefined && !(await ownedPrivateDir(outDir, owner));
  if (owner === undefined || handOver) ensurePrivateDir(outDir, "client home");
  ensurePrivateDir(paths.pool, "client pool");
  await writeNewFile(out.clientKey, client.keyPem, PRIVATE_FILE_MODE, owner);
  await writeNewFile(out.clientCert, client.certPem, PUBLIC_FILE_MODE, owner);
  await writeNewFile(out.caCert, ca.certPem, PUBLIC_FILE_MODE, owner);
  // The directory last: until then only root can reach what is in it.
  if (owner && handOver) await lchown(outDir, owner.uid, owner.gid);
  // The pool entry goes last, so a failure above never lets in a certificate nobody holds the key of.
  await writeNewFile(poolPath, client.certPem, PUBLIC_FILE_MODE);
  return {
    certPath: out.clientCert,
    keyPath: out.clientKey,
    hash: certificateHash(new Uint8Array(client.cert.rawData)),
  };
}

/**
 * Writes a file that must not exist yet ("wx": O_EXCL, so not through a
 * symlink either), with the given mode and, if given, owner — set through the
 * open file, never by path, so nothing swapped in meanwhile is handed over.
 */
async function writeNewFile(path: string, contents: string, mode: number, owner?: Owner): Promise<void> {
  if (!owner) {
    await writeFile(path, contents, { mode, flag: "wx" });
    // The mode given to open(2) is filtered by the umask; private keys must be exactly 0600.
    await chmod(path, mode);
    return;
  }
  const file = await open(path, "wx", mode);
  try {
    await file.chown(owner.uid, owner.gid);
    await file.chmod(mode);
    await file.writeFile(contents);
  } finally {
    await file.close();
  }
}

/** Whether `dir` is already the owner's own private directory (made by them beforehand). */
async function ownedPrivateDir(dir: string, owner: Owner): Promise<boolean> {
  try {
    const stat = await lstat(dir);
    return stat.isDirectory() && stat.uid === owner.uid && (stat.mode & 0o077) === 0;
  } catch {
    return false;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path, constants.F_OK);
    return true;
  } catch {
    return false;
  }
}
