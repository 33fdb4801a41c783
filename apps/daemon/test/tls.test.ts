// The transport against a real grpc-js server over mTLS: TLS versions,
// suites and groups (raw node:tls clients for what gRPC cannot show), and a
// server stream through connectJobService.
import { describe, expect, test } from "bun:test";
import { readFile } from "node:fs/promises";
import * as tls from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { connectJobService } from "@jobber/proto";
import { homePaths } from "../src/pki";
import {
  caCertPem,
  expectNewFollowCancellation,
  FOLLOW_CHUNKS,
  followCancelled,
  getJobsAs,
  hashOfPem,
  home,
  port,
  takeLastTenant,
  useMtlsServer,
} from "./mtls-server";

useMtlsServer();

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
