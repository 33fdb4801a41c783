// The TLS, PKI and authentication layer against a real grpc-js server over
// mTLS: a tiny JobService whose calls authenticate their caller, clients made
// with connectJobService, and raw node:tls clients for what gRPC cannot show.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import type { JobberError } from "@jobber/jobber";
import {
  type ClientIdentity,
  connectJobService,
  FollowJobLogResponseSchema,
  GetJobsResponseSchema,
  jobServiceDefinition,
} from "@jobber/proto";
import { Authenticator } from "../src/auth";
import { IdentityError } from "../src/identity-error";
import { bootstrapHome, certificateHash, homePaths, issueClientIdentity } from "../src/pki";
import { loadServerCredentials } from "../src/tls";
import {
  addToPool,
  expiredClient,
  foreignCaClient,
  notYetValidClient,
  selfSignedClient,
  serverAuthOnlyClient,
  type TestIdentity,
} from "./certs";

let root: string;
let home: string;
let port: number;
let server: grpc.Server;
let authenticator: Authenticator;
/** The tenant of the last call that got through. */
let lastTenant: string | undefined;
/** Resolved with the server side of each FollowJobLog call once it is cancelled. */
let followCancelled: Promise<void>;
let onFollowCancelled: () => void = () => {};

const FOLLOW_CHUNKS = [
  new Uint8Array([0, 1, 2]),
  new TextEncoder().encode("héllo\n"),
  new Uint8Array([0xff]),
];

function fail(error: unknown): Partial<grpc.StatusObject> {
  if (error instanceof IdentityError && error.code === "UNAUTHENTICATED") {
    return { code: grpc.status.UNAUTHENTICATED, details: error.message };
  }
  return { code: grpc.status.INTERNAL, details: String(error) };
}

/** A tenant as the daemon makes one: named by the hash of the certificate's DER. */
const tenantOf = (der: Uint8Array) => ({ hash: () => certificateHash(der) });

/** Just enough of JobService to exercise authentication on unary and streaming calls. */
const testService: grpc.UntypedServiceImplementation = {
  getJobs(call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) {
    try {
      lastTenant = authenticator.authenticate(call, tenantOf).hash();
    } catch (error) {
      callback(fail(error));
      return;
    }
    callback(null, create(GetJobsResponseSchema, {}));
  },
  followJobLog(call: grpc.ServerWritableStream<{ offset: bigint }, unknown>) {
    try {
      // The tenant is made from the DER the caller presented.
      lastTenant = authenticator.authenticate(call, tenantOf).hash();
    } catch (error) {
      call.emit("error", fail(error));
      return;
    }
    call.on("cancelled", () => onFollowCancelled());
    for (const data of FOLLOW_CHUNKS) call.write(create(FollowJobLogResponseSchema, { data }));
    // offset 0: a finished job, the stream ends; otherwise a running one that never ends by itself.
    if (call.request.offset === 0n) call.end();
  },
};

function expectNewFollowCancellation() {
  followCancelled = new Promise((resolve) => {
    onFollowCancelled = resolve;
  });
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "jobber-tls-test-"));
  home = join(root, "home");
  expect(await bootstrapHome(home)).toEqual({ created: true });
  authenticator = await Authenticator.fromHome(home);
  server = new grpc.Server();
  server.addService(jobServiceDefinition, testService);
  const credentials = await loadServerCredentials(home);
  port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", credentials, (error, boundPort) =>
      error ? reject(error) : resolve(boundPort),
    ),
  );
});

afterAll(async () => {
  server?.forceShutdown();
  if (root) await rm(root, { recursive: true, force: true });
});

/** The tenant of the last call that got through (a function, so TypeScript does not narrow it). */
function takeLastTenant(): string | undefined {
  const tenant = lastTenant;
  lastTenant = undefined;
  return tenant;
}

/** GetJobs as the given client: the tenant the server saw, or the gRPC error. */
async function getJobsAs(options: {
  home?: string;
  identity?: ClientIdentity;
  addr?: string;
}): Promise<{ tenant?: string; error?: grpc.ServiceError }> {
  const client = connectJobService({ addr: options.addr ?? `127.0.0.1:${port}`, ...options });
  takeLastTenant();
  try {
    await client.getJobs();
    return { tenant: takeLastTenant() };
  } catch (error) {
    return { error: error as grpc.ServiceError };
  } finally {
    client.close();
  }
}

async function caCertPem() {
  return readFile(homePaths(home).caCert, "utf8");
}

async function identityOf(testIdentity: TestIdentity): Promise<ClientIdentity> {
  return { cert: testIdentity.certPem, key: testIdentity.keyPem, ca: await caCertPem() };
}

function expectUnauthenticated(result: { error?: grpc.ServiceError }, reason: RegExp) {
  expect(result.error?.code).toBe(grpc.status.UNAUTHENTICATED);
  expect(result.error?.details).toMatch(reason);
}

async function modeOf(path: string) {
  return (await stat(path)).mode & 0o777;
}

async function hashOfPem(path: string) {
  return certificateHash(new X509Certificate(await readFile(path)).raw);
}

describe("PKI bootstrap", () => {
  test("creates a private home: keys 0600, directories 0700", async () => {
    const paths = homePaths(home);
    for (const key of [paths.caKey, paths.serverKey, paths.clientKey]) {
      expect(await modeOf(key)).toBe(0o600);
      expect(await readFile(key, "utf8")).toStartWith("-----BEGIN PRIVATE KEY-----");
    }
    expect(await modeOf(home)).toBe(0o700);
    expect(await modeOf(paths.pool)).toBe(0o700);
    expect(await readFile(join(paths.pool, "client.crt"), "utf8")).toBe(
      await readFile(paths.clientCert, "utf8"),
    );
  });

  test("makes a CA, a server certificate for this machine and a client certificate", async () => {
    const paths = homePaths(home);
    const ca = new X509Certificate(await readFile(paths.caCert));
    const serverCert = new X509Certificate(await readFile(paths.serverCert));
    const clientCert = new X509Certificate(await readFile(paths.clientCert));
    expect(ca.ca).toBe(true);
    expect(ca.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    for (const leaf of [serverCert, clientCert]) {
      expect(leaf.ca).toBe(false);
      expect(leaf.checkIssued(ca) && leaf.verify(ca.publicKey)).toBe(true);
    }
    expect(serverCert.checkHost("localhost")).toBe("localhost");
    expect(serverCert.checkHost(hostname())).toBe(hostname());
    expect(serverCert.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(serverCert.checkIP("::1")).toBeDefined();
    expect(serverCert.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1"]);
    expect(clientCert.keyUsage).toEqual(["1.3.6.1.5.5.7.3.2"]);
  });

  test("the first client identity gets through, as the tenant sha256(DER)", async () => {
    const result = await getJobsAs({ home });
    expect(result.error).toBeUndefined();
    expect(result.tenant).toBe(await hashOfPem(homePaths(home).clientCert));
    expect(result.tenant).toMatch(/^[0-9a-f]{64}$/);
  });

  test("the server certificate verifies for the name localhost", async () => {
    const result = await getJobsAs({ home, addr: `localhost:${port}` });
    expect(result.error).toBeUndefined();
  });

  test("a second bootstrap leaves the home as it is", async () => {
    const paths = homePaths(home);
    const files = [
      paths.caCert,
      paths.caKey,
      paths.serverCert,
      paths.serverKey,
      paths.clientCert,
      paths.clientKey,
    ];
    const before = await Promise.all(files.map((file) => readFile(file)));
    expect(await bootstrapHome(home)).toEqual({ created: false });
    const after = await Promise.all(files.map((file) => readFile(file)));
    after.forEach((contents, index) => {
      expect(contents.equals(before[index] as Buffer)).toBe(true);
    });
  });

  test("a home with some PKI files but no server.crt is refused, not overwritten", async () => {
    const partialHome = join(root, "partial-home");
    await bootstrapHome(partialHome);
    await rm(homePaths(partialHome).serverCert);
    const caBefore = await readFile(homePaths(partialHome).caCert);
    const error = await bootstrapHome(partialHome).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(IdentityError);
    expect((error as IdentityError).code).toBe("FAILED_PRECONDITION");
    expect((error as IdentityError).message).toContain("will not overwrite");
    expect((await readFile(homePaths(partialHome).caCert)).equals(caBefore)).toBe(true);
  });

  test("a home that is a symbolic link, or writable by others, is refused", async () => {
    const realHome = join(root, "real-home");
    await mkdir(realHome, { mode: 0o700 });
    const linkedHome = join(root, "linked-home");
    await symlink(realHome, linkedHome);
    const linkError = await bootstrapHome(linkedHome).catch((caught: unknown) => caught);
    expect((linkError as JobberError).code).toBe("FAILED_PRECONDITION");
    expect((linkError as JobberError).message).toContain("symbolic link");

    await chmod(realHome, 0o777);
    const modeError = await bootstrapHome(realHome).catch((caught: unknown) => caught);
    expect((modeError as JobberError).message).toContain("writable by group or others");
    expect(await readdir(realHome)).toEqual([]);
  });
});

describe("issuing client identities", () => {
  test("issueClientIdentity makes a client home that gets in once the pool is reloaded", async () => {
    const outDir = join(root, "alice");
    const issued = await issueClientIdentity(home, "alice", outDir);
    expect(issued.certPath).toBe(join(outDir, "client.crt"));
    expect(issued.keyPath).toBe(join(outDir, "client.key"));
    expect(await modeOf(issued.keyPath)).toBe(0o600);
    expect(await modeOf(outDir)).toBe(0o700);
    expect(await readFile(join(outDir, "ca.crt"), "utf8")).toBe(await caCertPem());
    expect(await readFile(join(homePaths(home).pool, "alice.crt"), "utf8")).toBe(
      await readFile(issued.certPath, "utf8"),
    );
    expect(issued.hash).toBe(await hashOfPem(issued.certPath));

    expectUnauthenticated(await getJobsAs({ home: outDir }), /not in the server's pool/);
    await authenticator.reload();
    expect(await getJobsAs({ home: outDir })).toEqual({ tenant: issued.hash });
  });

  test("issuing the same name twice is refused", async () => {
    await issueClientIdentity(home, "bob", join(root, "bob"));
    const error = await issueClientIdentity(home, "bob", join(root, "bob2")).catch(
      (caught: unknown) => caught,
    );
    expect((error as IdentityError).code).toBe("ALREADY_EXISTS");
  });

  test("a name that is not a plain file name is refused", async () => {
    const error = await issueClientIdentity(home, "../escape", join(root, "escape")).catch(
      (caught: unknown) => caught,
    );
    expect((error as IdentityError).code).toBe("INVALID_ARGUMENT");
  });

  test("a home with its own PKI (no ca.key) cannot issue", async () => {
    const ownPkiHome = join(root, "own-pki");
    await bootstrapHome(ownPkiHome);
    await rm(homePaths(ownPkiHome).caKey);
    const error = await issueClientIdentity(ownPkiHome, "carol", join(root, "carol")).catch(
      (caught: unknown) => caught,
    );
    expect((error as IdentityError).code).toBe("FAILED_PRECONDITION");
    expect((error as IdentityError).message).toContain("no ca.key");
  });
});

describe("client authentication", () => {
  test("no client certificate: UNAUTHENTICATED naming the missing certificate", async () => {
    expectUnauthenticated(await getJobsAs({ identity: { ca: await caCertPem() } }), /no client certificate/);
  });

  test("a certificate outside the pool: UNAUTHENTICATED", async () => {
    const stranger = await foreignCaClient();
    expectUnauthenticated(
      await getJobsAs({ identity: await identityOf(stranger) }),
      new RegExp(`${stranger.hash} is not in the server's pool`),
    );
  });

  test("an expired certificate in the pool: UNAUTHENTICATED 'expired'", async () => {
    const expired = await expiredClient(home);
    await addToPool(home, "expired", expired.certPem);
    await authenticator.reload();
    expectUnauthenticated(await getJobsAs({ identity: await identityOf(expired) }), /expired/);
  });

  test("a not yet valid certificate in the pool: UNAUTHENTICATED", async () => {
    const future = await notYetValidClient(home);
    await addToPool(home, "future", future.certPem);
    await authenticator.reload();
    expectUnauthenticated(await getJobsAs({ identity: await identityOf(future) }), /not valid before/);
  });

  test("a serverAuth-only certificate in the pool: UNAUTHENTICATED for its purpose", async () => {
    const serverOnly = await serverAuthOnlyClient(home);
    await addToPool(home, "server-only", serverOnly.certPem);
    await authenticator.reload();
    expectUnauthenticated(
      await getJobsAs({ identity: await identityOf(serverOnly) }),
      /lacks the clientAuth/,
    );
  });

  test("a certificate of a foreign CA put in the pool: UNAUTHENTICATED, its signature does not verify", async () => {
    const foreign = await foreignCaClient();
    await addToPool(home, "foreign", foreign.certPem);
    await authenticator.reload();
    expectUnauthenticated(
      await getJobsAs({ identity: await identityOf(foreign) }),
      /signature does not verify/,
    );
  });

  test("a self-signed certificate pinned in the pool gets through", async () => {
    const pinned = await selfSignedClient();
    expectUnauthenticated(
      await getJobsAs({ identity: await identityOf(pinned) }),
      /not in the server's pool/,
    );
    await addToPool(home, "pinned", pinned.certPem);
    await authenticator.reload();
    expect(await getJobsAs({ identity: await identityOf(pinned) })).toEqual({ tenant: pinned.hash });
  });

  test("a pool file that is not a certificate fails the reload and keeps the previous pool", async () => {
    const badFile = join(homePaths(home).pool, "broken.crt");
    await writeFile(badFile, "not a certificate\n");
    const error = await authenticator.reload().catch((caught: unknown) => caught);
    expect((error as IdentityError).code).toBe("FAILED_PRECONDITION");
    await rm(badFile);
    expect((await getJobsAs({ home })).error).toBeUndefined();
  });

  test("authenticateCertificate checks dates at the time given", async () => {
    const clientDer = new X509Certificate(await readFile(homePaths(home).clientCert)).raw;
    const farFuture = new Date(Date.now() + 100 * 365 * 24 * 60 * 60 * 1000);
    expect(() => authenticator.authenticateCertificate(clientDer, farFuture)).toThrow(/expired/);
    expect(authenticator.authenticateCertificate(clientDer)).toBe(certificateHash(clientDer));
  });
});

describe("transport", () => {
  function rawConnect(options: tls.ConnectionOptions) {
    return new Promise<{ socket?: tls.TLSSocket; error?: Error }>((resolve) => {
      const socket = tls.connect({
        host: "127.0.0.1",
        port,
        servername: "localhost",
        ALPNProtocols: ["h2"],
        ...options,
      });
      socket.once("secureConnect", () => resolve({ socket }));
      socket.once("error", (error) => resolve({ error }));
    });
  }

  test("a TLS 1.2-only client is refused at the handshake", async () => {
    const { socket, error } = await rawConnect({ maxVersion: "TLSv1.2", ca: await caCertPem() });
    socket?.destroy();
    expect(socket).toBeUndefined();
    expect(error?.message).toMatch(/PROTOCOL_VERSION|protocol version/i);
  });

  test("a normal client negotiates TLS 1.3 with an AEAD suite over X25519", async () => {
    const paths = homePaths(home);
    const { socket, error } = await rawConnect({
      ca: await caCertPem(),
      cert: await readFile(paths.clientCert),
      key: await readFile(paths.clientKey),
    });
    expect(error).toBeUndefined();
    try {
      expect(socket?.authorized).toBe(true);
      expect(socket?.getProtocol()).toBe("TLSv1.3");
      expect(socket?.alpnProtocol).toBe("h2");
      expect(socket?.getCipher().name).toMatch(
        /^TLS_(AES_128_GCM|AES_256_GCM|CHACHA20_POLY1305)_SHA(256|384)$/,
      );
      expect(socket?.getEphemeralKeyInfo()).toMatchObject({ type: "ECDH", name: "X25519" });
    } finally {
      socket?.destroy();
    }
  });

  test("a client offering only groups other than X25519 and P-256 is refused", async () => {
    const { socket, error } = await rawConnect({ ecdhCurve: "P-384", ca: await caCertPem() });
    socket?.destroy();
    expect(socket).toBeUndefined();
    expect(error).toBeDefined();
  });

  test("the client refuses a server that offers less than TLS 1.3", async () => {
    const paths = homePaths(home);
    const oldServer = tls.createServer({
      key: await readFile(paths.serverKey),
      cert: await readFile(paths.serverCert),
      maxVersion: "TLSv1.2",
    });
    const refusedByClient = new Promise<Error>((resolve) => oldServer.once("tlsClientError", resolve));
    await new Promise<void>((resolve) => oldServer.listen(0, "127.0.0.1", resolve));
    const oldPort = (oldServer.address() as { port: number }).port;
    try {
      const result = await getJobsAs({ home, addr: `127.0.0.1:${oldPort}` });
      expect(result.error?.code).toBe(grpc.status.UNAVAILABLE);
      expect((await refusedByClient).message).toMatch(/UNSUPPORTED_PROTOCOL|protocol version/i);
    } finally {
      oldServer.close();
    }
  });
});

describe("followJobLog", () => {
  test("yields the bytes of the stream and ends with it", async () => {
    const client = connectJobService({ addr: `127.0.0.1:${port}`, home });
    try {
      const received: Uint8Array[] = [];
      for await (const chunk of client.followJobLog({ jobId: 1n })) received.push(chunk);
      expect(received).toEqual(FOLLOW_CHUNKS);
      expect(takeLastTenant()).toBe(await hashOfPem(homePaths(home).clientCert));
    } finally {
      client.close();
    }
  });

  test("is refused like any call without a valid certificate", async () => {
    const client = connectJobService({ addr: `127.0.0.1:${port}`, identity: { ca: await caCertPem() } });
    try {
      const iterate = async () => {
        for await (const _ of client.followJobLog({ jobId: 1n })) {
          // no data is expected
        }
      };
      const error = (await iterate().catch((caught: unknown) => caught)) as grpc.ServiceError;
      expect(error.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(error.details).toMatch(/no client certificate/);
    } finally {
      client.close();
    }
  });

  test("stopping the iteration cancels the call on the server", async () => {
    expectNewFollowCancellation();
    const client = connectJobService({ addr: `127.0.0.1:${port}`, home });
    try {
      for await (const chunk of client.followJobLog({ jobId: 1n, offset: 1n })) {
        expect(chunk).toEqual(FOLLOW_CHUNKS[0] as Uint8Array);
        break;
      }
      await followCancelled;
    } finally {
      client.close();
    }
  });

  test("aborting the signal cancels the call and ends the iteration with the abort", async () => {
    expectNewFollowCancellation();
    const client = connectJobService({ addr: `127.0.0.1:${port}`, home });
    const controller = new AbortController();
    try {
      const iterate = async () => {
        for await (const _ of client.followJobLog({ jobId: 1n, offset: 1n }, { signal: controller.signal })) {
          controller.abort();
        }
      };
      const error = await iterate().catch((caught: unknown) => caught);
      expect((error as Error).name).toBe("AbortError");
      await followCancelled;
    } finally {
      client.close();
    }
  });
});
