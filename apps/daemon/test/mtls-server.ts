// A tiny JobService over real mTLS, for the tests of the PKI, authentication
// and transport: its calls authenticate their caller as jobberd's do, and
// clients are made with connectJobService. Each test file that uses it gets
// a fresh home (useMtlsServer).
import { afterAll, beforeAll, expect } from "bun:test";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  type ClientIdentity,
  connectJobService,
  FollowJobLogResponseSchema,
  GetJobsResponseSchema,
  jobServiceDefinition,
} from "@jobber/proto";
import { Authenticator } from "../src/auth";
import { IdentityError } from "../src/identity-error";
import { bootstrapHome, certificateHash, homePaths } from "../src/pki";
import { loadServerCredentials } from "../src/tls";
import type { TestIdentity } from "./certs";

export let root: string;
export let home: string;
export let port: number;
let server: grpc.Server | undefined;
export let authenticator: Authenticator;
/** The tenant of the last call that got through. */
let lastTenant: string | undefined;
/** Resolved with the server side of each FollowJobLog call once it is cancelled. */
export let followCancelled: Promise<void>;
let onFollowCancelled: () => void = () => {};

export const FOLLOW_CHUNKS = [
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

export function expectNewFollowCancellation() {
  followCancelled = new Promise((resolve) => {
    onFollowCancelled = resolve;
  });
}

/**
 * A fresh home and the tiny JobService over mTLS for the calling test file:
 * started before its tests, stopped and removed after them.
 */
export function useMtlsServer(): void {
  beforeAll(startServer);
  afterAll(stopServer);
}

async function startServer(): Promise<void> {
  root = await mkdtemp(join(tmpdir(), "jobber-tls-test-"));
  home = join(root, "home");
  expect(await bootstrapHome(home)).toEqual({ created: true });
  authenticator = await Authenticator.fromHome(home);
  const started = new grpc.Server();
  server = started;
  started.addService(jobServiceDefinition, testService);
  const credentials = await loadServerCredentials(home);
  port = await new Promise<number>((resolve, reject) =>
    started.bindAsync("127.0.0.1:0", credentials, (error, boundPort) =>
      error ? reject(error) : resolve(boundPort),
    ),
  );
}

async function stopServer(): Promise<void> {
  server?.forceShutdown();
  server = undefined;
  if (root) await rm(root, { recursive: true, force: true });
}

/** The tenant of the last call that got through (a function, so TypeScript does not narrow it). */
export function takeLastTenant(): string | undefined {
  const tenant = lastTenant;
  lastTenant = undefined;
  return tenant;
}

/** GetJobs as the given client: the tenant the server saw, or the gRPC error. */
export async function getJobsAs(options: {
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

export async function caCertPem() {
  return readFile(homePaths(home).caCert, "utf8");
}

export async function identityOf(testIdentity: TestIdentity): Promise<ClientIdentity> {
  return { cert: testIdentity.certPem, key: testIdentity.keyPem, ca: await caCertPem() };
}

export function expectUnauthenticated(result: { error?: grpc.ServiceError }, reason: RegExp) {
  expect(result.error?.code).toBe(grpc.status.UNAUTHENTICATED);
  expect(result.error?.details).toMatch(reason);
}

export async function modeOf(path: string) {
  return (await stat(path)).mode & 0o777;
}

export async function hashOfPem(path: string) {
  return certificateHash(new X509Certificate(await readFile(path)).raw);
}
