// The PKI of a jobber home against a real grpc-js server over mTLS: what
// bootstrap makes (and refuses to touch), and issuing client identities.
import { describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import { chmod, mkdir, readdir, readFile, rm, symlink } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import type { JobberError } from "@jobber/jobber";
import { IdentityError } from "../src/identity-error";
import { bootstrapHome, homePaths, issueClientIdentity } from "../src/pki";
import {
  authenticator,
  caCertPem,
  expectUnauthenticated,
  getJobsAs,
  hashOfPem,
  home,
  modeOf,
  port,
  root,
  useMtlsServer,
} from "./mtls-server";

useMtlsServer();

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
