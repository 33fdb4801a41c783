// Clients that misbehave: garbage on the port, handshakes left half done,
// followers that never read or drop by the hundred, oversized and random
// requests. The daemon answers or closes that one stream, keeps serving the
// others, and gives back its file descriptors, watchers and memory.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { connect as connectTcp, type Socket } from "node:net";
import { connect as connectTls } from "node:tls";
import { Metadata, status } from "@grpc/grpc-js";
import { type JobClient, jobServiceDefinition, openJobServiceChannel } from "@jobber/proto";
import { codeOf, collect, type DaemonProcess, inotifyWatches, startDaemonProcess } from "./fixture";

let daemon: DaemonProcess;
let client: JobClient;

beforeAll(async () => {
  // Room for the 500 followers below: the stream quota has a test of its own (quotas.test.ts).
  daemon = await startDaemonProcess(["--tenant-streams", "1000"]);
  client = daemon.client();
  await client.getJobs(); // the connection every test then reuses
});

afterAll(async () => {
  await daemon.cleanup();
});

const openFds = () => readdirSync(`/proc/${daemon.process.pid}/fd`).length;
const rssMb = () =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${daemon.process.pid}/status`, "utf8"))?.[1]) / 1024;
const [host, port] = (() => {
  const at = () => daemon.address.lastIndexOf(":");
  return [() => daemon.address.slice(0, at()), () => Number(daemon.address.slice(at() + 1))];
})();

function figures(label: string, before: Record<string, number>, after: Record<string, number>) {
  const rows = Object.keys(before).map(
    (key) => `${key} ${before[key]?.toFixed(1)} → ${after[key]?.toFixed(1)}`,
  );
  console.log(`[figures] ${label}: ${rows.join(", ")}`);
}

/** Resolves once the socket is closed by either side. */
const closed = (socket: Socket) => new Promise<void>((resolve) => socket.once("close", () => resolve()));

test("garbage bytes and half-open TLS connections are dropped; others are served meanwhile", async () => {
  const before = { fds: openFds(), rss: rssMb() };
  const sockets: Socket[] = [];
  // Garbage instead of a ClientHello.
  for (let i = 0; i < 20; i++) {
    const socket = connectTcp(port(), host());
    socket.on("error", () => {});
    socket.write(randomBytes(16 * 1024));
    sockets.push(socket);
  }
  // A handshake that never finishes: TCP open, nothing sent.
  for (let i = 0; i < 20; i++) {
    const socket = connectTcp(port(), host());
    socket.on("error", () => {});
    sockets.push(socket);
  }
  // A finished TLS handshake that never speaks HTTP/2.
  const tlsSockets = await Promise.all(
    Array.from(
      { length: 20 },
      () =>
        new Promise<Socket>((resolve) => {
          const socket = connectTls({
            host: host(),
            port: port(),
            servername: "localhost",
            rejectUnauthorized: false,
          });
          socket.on("error", () => {});
          socket.once("secureConnect", () => resolve(socket));
        }),
    ),
  );
  // The daemon serves a well-behaved client while all of that is open.
  expect((await client.getJobs()).jobs).toBeArray();
  for (const socket of [...sockets, ...tlsSockets]) socket.destroy();
  await Promise.all([...sockets, ...tlsSockets].map((s) => (s.closed ? undefined : closed(s))));
  // The server notices the closes on its side asynchronously; wait for its fds to go.
  await eventually(() => openFds() <= before.fds);
  figures("garbage + half-open TLS (60 connections)", before, { fds: openFds(), rss: rssMb() });
  expect(openFds()).toBeLessThanOrEqual(before.fds);
});

test("a follower that never reads holds the daemon's memory bounded (backpressure)", async () => {
  const before = { fds: openFds(), rss: rssMb() };
  const { job } = await client.startJob({ args: ["head", "-c", String(512 * 1024 * 1024), "/dev/zero"] });
  const channel = openJobServiceChannel({ addr: daemon.address, home: daemon.home });
  const method = jobServiceDefinition.followJobLog;
  const call = channel.makeServerStreamRequest(
    method.path,
    method.requestSerialize,
    method.responseDeserialize,
    { $typeName: "jobber.v1.FollowJobLogRequest", jobId: job?.id as bigint, offset: 0n },
    new Metadata(),
    {},
  );
  call.on("error", () => {});
  call.pause(); // and never resume: a reader that never reads
  // Wait for the job to have written all 512 MiB.
  expect((await collect(client.followJobLog({ jobId: job?.id, offset: 512n * 1024n * 1024n }))).length).toBe(
    0,
  );
  const during = rssMb();
  call.cancel();
  channel.close();
  figures("stalled follower of 512 MiB", before, { fds: openFds(), rss: during });
  // Without backpressure the daemon would hold the whole 512 MiB.
  expect(during - before.rss).toBeLessThan(128);
});

test("500 followers that connect and drop leave no watcher or fd behind", async () => {
  const { job } = await client.startJob({ args: ["sh", "-c", "echo hello; exec sleep 1000"] });
  const jobId = job?.id as bigint;
  const before = { fds: openFds(), watches: inotifyWatches(daemon.process.pid), rss: rssMb() };
  const followers = Array.from({ length: 500 }, () => {
    const controller = new AbortController();
    const iterator = client.followJobLog({ jobId }, { signal: controller.signal })[Symbol.asyncIterator]();
    return { controller, first: iterator.next(), iterator };
  });
  for (const follower of followers)
    expect(Buffer.from((await follower.first).value).toString()).toBe("hello\n");
  const during = { fds: openFds(), watches: inotifyWatches(daemon.process.pid), rss: rssMb() };
  for (const follower of followers) follower.controller.abort();
  await Promise.all(followers.map((f) => f.iterator.next().catch(() => {})));
  await eventually(() => openFds() <= before.fds && inotifyWatches(daemon.process.pid) <= before.watches);
  const after = { fds: openFds(), watches: inotifyWatches(daemon.process.pid), rss: rssMb() };
  figures("500 followers: before → during", before, during);
  figures("500 followers: before → after", before, after);
  expect(during.fds).toBeGreaterThan(before.fds); // they really were open
  expect(after.fds).toBeLessThanOrEqual(before.fds);
  expect(after.watches).toBe(before.watches);
  await client.stopJob({ jobId });
});

test("oversized requests are refused with INVALID_ARGUMENT", async () => {
  const huge = await client.startJob({ args: ["echo", "x".repeat(1024 * 1024)] }).catch((e) => e);
  expect(huge.code).toBe(status.INVALID_ARGUMENT);
  expect(huge.details).toContain("bytes");
  const many = await client.startJob({ args: ["echo", ...Array(10_000).fill("x")] }).catch((e) => e);
  expect(many.code).toBe(status.INVALID_ARGUMENT);
  expect(many.details).toContain("too many arguments");
  // Past the transport's limit the request is not even read.
  expect(await codeOf(client.startJob({ args: ["echo", "x".repeat(8 * 1024 * 1024)] }))).toBe(
    status.RESOURCE_EXHAUSTED,
  );
  expect((await client.getJobs()).jobs).toBeArray();
});

test("random bytes as the request of every RPC get a status, never a crash", async () => {
  const channel = openJobServiceChannel({ addr: daemon.address, home: daemon.home });
  const identity = (bytes: Buffer) => bytes;
  const codes = new Set<number>();
  try {
    for (const method of Object.values(jobServiceDefinition)) {
      for (let i = 0; i < 25; i++) {
        const payload = randomBytes(1 + Math.floor(Math.random() * 512));
        const code = await new Promise<number>((resolve) => {
          if (method.responseStream) {
            const call = channel.makeServerStreamRequest(
              method.path,
              identity,
              identity,
              payload,
              new Metadata(),
              {},
            );
            call.on("data", () => {});
            call.on("error", (error: { code: number }) => resolve(error.code));
            call.on("end", () => resolve(status.OK));
          } else {
            channel.makeUnaryRequest(method.path, identity, identity, payload, new Metadata(), {}, (error) =>
              resolve(error ? (error.code as number) : status.OK),
            );
          }
        });
        codes.add(code);
      }
    }
  } finally {
    channel.close();
  }
  // Random bytes rarely parse; when they do, the request is judged like any other.
  expect([...codes].every((code) => code !== status.UNKNOWN && code !== status.UNAVAILABLE)).toBe(true);
  expect(codes.has(status.INTERNAL) || codes.has(status.INVALID_ARGUMENT)).toBe(true);
  expect((await client.getJobs()).jobs).toBeArray();
  expect(daemon.process.exitCode).toBeNull();
});

/** Waits for a condition that the daemon reaches asynchronously (closing sockets it saw close). */
async function eventually(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return;
    await Bun.sleep(50);
  }
}
