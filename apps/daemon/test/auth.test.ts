// Authenticating callers against a real grpc-js server over mTLS: who is let
// in, who is refused and with which reason, and reloading the pool.
import { describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { IdentityError } from "../src/identity-error";
import { certificateHash, homePaths } from "../src/pki";
import {
  addToPool,
  expiredClient,
  foreignCaClient,
  notYetValidClient,
  selfSignedClient,
  serverAuthOnlyClient,
} from "./certs";
import {
  authenticator,
  caCertPem,
  expectUnauthenticated,
  getJobsAs,
  home,
  identityOf,
  useMtlsServer,
} from "./mtls-server";

useMtlsServer();

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
