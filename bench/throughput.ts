// Follow throughput: one follower of a job writing `bytes` of output, and
// 100 concurrent followers of one job, against a bare grpc-js stream of the
// same log file over the same TLS (raw-grpc-server.ts).
//
// MB/s are 10^6 bytes per second of wall time, from the FollowJobLog call to
// the end of the stream, counting the bytes the client received. Every
// follower has its own connection (its own client, as separate `jb log -f`
// processes would), handshaken before the clock starts.
import { connectJobService, type JobClient } from "../proto/src/index.ts";
import { onCleanup } from "./cleanup";
import type { BenchDaemon } from "./daemon";
import { cpuSeconds } from "./proc";
import { startRawServer } from "./raw-grpc";

const MIB = 1024 * 1024;

export interface StreamFigure {
  mbps: number;
  bytes: number;
  seconds: number;
  /** CPU seconds the server process (jobberd or the raw server) spent meanwhile. */
  serverCpuSeconds: number;
  /** CPU seconds this (client) process spent meanwhile. */
  clientCpuSeconds: number;
}

export interface ThroughputResult {
  /** One follower, started as the job starts. */
  follow1: StreamFigure;
  /** One follower of the same log once the job has finished. */
  follow1Finished: StreamFigure;
  raw1: StreamFigure;
  /** `followers` concurrent followers of one job, aggregate. */
  followN: StreamFigure;
  rawN: StreamFigure;
  bytes1: number;
  bytesN: number;
  followers: number;
}

/** A job that writes `bytes` zero bytes in 1 MiB writes, with room for its page cache. */
function writerJob(bytes: number) {
  return {
    args: ["/usr/bin/dd", "if=/dev/zero", `bs=${MIB}`, `count=${bytes / MIB}`, "status=none"],
    // The log's page cache is charged to the job's memory cgroup; under the
    // default 1 GiB limit a 1 GiB log would be written back and re-read.
    limits: { memoryBytes: BigInt(bytes + 512 * MIB), logBytes: BigInt(bytes) },
  };
}

async function drain(client: JobClient, jobId: bigint): Promise<number> {
  let bytes = 0;
  for await (const chunk of client.followJobLog({ jobId })) bytes += chunk.length;
  return bytes;
}

/** Runs `followers` streams at once; the figure is their aggregate rate. */
async function measure(
  serverPid: number,
  clients: JobClient[],
  run: (client: JobClient) => Promise<number>,
): Promise<StreamFigure> {
  const serverCpuBefore = cpuSeconds(serverPid);
  const clientCpuBefore = process.cpuUsage();
  const began = performance.now();
  const counts = await Promise.all(clients.map(run));
  const seconds = (performance.now() - began) / 1000;
  const clientCpu = process.cpuUsage(clientCpuBefore);
  const bytes = counts.reduce((sum, count) => sum + count, 0);
  return {
    mbps: bytes / 1e6 / seconds,
    bytes,
    seconds,
    serverCpuSeconds: cpuSeconds(serverPid) - serverCpuBefore,
    clientCpuSeconds: (clientCpu.user + clientCpu.system) / 1e6,
  };
}

async function connected(addr: string, home: string, count: number): Promise<JobClient[]> {
  const clients = Array.from({ length: count }, () => connectJobService({ addr, home }));
  onCleanup(`${count} clients of ${addr}`, () => {
    for (const client of clients) client.close();
  });
  // A unary call per client: the TLS handshake happens now, not in the timed part.
  await Promise.all(clients.map((client) => client.getJobs().catch(() => undefined)));
  return clients;
}

export async function benchThroughput(
  daemon: BenchDaemon,
  options: { bytes1: number; bytesN: number; followers: number },
): Promise<ThroughputResult> {
  const [single] = await connected(daemon.address, daemon.home, 1);
  const client = single as JobClient;

  // One follower, live: it starts as soon as StartJob returns, while dd writes.
  const { job: bigJob } = await client.startJob(writerJob(options.bytes1));
  const bigId = bigJob?.id ?? 0n;
  const follow1 = await measure(daemon.pid, [client], (c) => drain(c, bigId));
  const follow1Finished = await measure(daemon.pid, [client], (c) => drain(c, bigId));
  const raw = await startRawServer(daemon.home, { file: logPathOf(daemon, bigId) });
  const [rawClient] = await connected(raw.address, daemon.home, 1);
  const raw1 = await measure(raw.pid, [rawClient as JobClient], (c) => drain(c, 0n));
  await raw.stop();

  // Many followers of one job, all live from its start.
  const followers = await connected(daemon.address, daemon.home, options.followers);
  const { job: sharedJob } = await client.startJob(writerJob(options.bytesN));
  const sharedId = sharedJob?.id ?? 0n;
  const followN = await measure(daemon.pid, followers, (c) => drain(c, sharedId));
  const rawShared = await startRawServer(daemon.home, { file: logPathOf(daemon, sharedId) });
  const rawFollowers = await connected(rawShared.address, daemon.home, options.followers);
  const rawN = await measure(rawShared.pid, rawFollowers, (c) => drain(c, 0n));
  await rawShared.stop();

  for (const figure of [follow1, follow1Finished, raw1]) expectBytes(figure, options.bytes1);
  for (const figure of [followN, rawN]) expectBytes(figure, options.bytesN * options.followers);
  return {
    follow1,
    follow1Finished,
    raw1,
    followN,
    rawN,
    bytes1: options.bytes1,
    bytesN: options.bytesN,
    followers: options.followers,
  };
}

function expectBytes(figure: StreamFigure, expected: number): void {
  if (figure.bytes !== expected) throw new Error(`streamed ${figure.bytes} bytes, expected ${expected}`);
}

function logPathOf(daemon: BenchDaemon, jobId: bigint): string {
  // One tenant (the bootstrapped identity), so the job's directory is the only one with this id.
  const glob = new Bun.Glob(`jobs/*/${jobId}/log`);
  const [path] = [...glob.scanSync({ cwd: daemon.stateDir, absolute: true, onlyFiles: true })];
  if (!path) throw new Error(`no log for job ${jobId} under ${daemon.stateDir}`);
  return path;
}
