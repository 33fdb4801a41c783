// Follow latency: a job writes a wall-clock timestamp line every 10 ms; how
// long until a gRPC follower has the line, against an fs.watch (inotify)
// reader of a plain file written by the same program.
//
// The writer is bash printing $EPOCHREALTIME (gettimeofday, µs) with the
// `echo` builtin (one write(2) per line) and sleeping with `read -t` on a
// FIFO nobody writes to: no fork per line, so the timestamp is taken a few
// µs before the write. The reader takes CLOCK_REALTIME (clock.ts) when the
// bytes are in its hands: when the gRPC stream yields them, or when readSync
// returns them after the inotify event.
import { closeSync, constants, openSync, readSync, watch } from "node:fs";
import { join } from "node:path";
import { connectJobService } from "../proto/src/index.ts";
import { realtimeMicros } from "./clock";
import type { BenchDaemon } from "./daemon";
import { startRawServer } from "./raw-grpc";
import { type Summary, summarize } from "./stats";

const INTERVAL_SECONDS = 0.01;

/** The writer: `lines` timestamps, one per interval. Needs only bash, mktemp and mkfifo. */
export function timestampWriter(lines: number): string[] {
  const script = [
    'fifo="$(mktemp -u)"',
    'mkfifo "$fifo"',
    'exec 3<>"$fifo"',
    'rm "$fifo"',
    `for ((i = 0; i < ${lines}; i++)); do echo "$EPOCHREALTIME"; read -t ${INTERVAL_SECONDS} -u 3; done`,
  ].join(" && ");
  return ["/bin/bash", "-c", script];
}

/** Turns received bytes into latencies, one per complete line. */
class LineClock {
  readonly latencies: number[] = [];
  private partial = "";
  private readonly decoder = new TextDecoder();

  receive(bytes: Uint8Array, receivedAtMicros: number): void {
    const lines = (this.partial + this.decoder.decode(bytes, { stream: true })).split("\n");
    this.partial = lines.pop() as string;
    for (const line of lines) {
      // $EPOCHREALTIME is "seconds.micros".
      const [seconds, micros] = line.split(".");
      const writtenAt = Number(seconds) * 1e6 + Number(micros);
      if (!Number.isFinite(writtenAt)) throw new Error(`not a timestamp line: ${JSON.stringify(line)}`);
      this.latencies.push(receivedAtMicros - writtenAt);
    }
  }
}

export interface FollowLatencyResult {
  follow: Summary;
  tail: Summary;
  /** Timestamp lines sent by a bare grpc-js server (no file, no inotify): the transport's share. */
  rawGrpc: Summary;
}

export async function benchFollowLatency(
  daemon: BenchDaemon,
  options: { lines: number; warmup: number; scratchDir: string },
): Promise<FollowLatencyResult> {
  const writer = timestampWriter(options.lines + options.warmup);
  const tail = await tailLatencies(writer, join(options.scratchDir, "tail.log"));
  const follow = await followLatencies(daemon, writer);
  const rawGrpc = await rawGrpcLatencies(daemon.home, options.lines + options.warmup);
  const measured = (latencies: number[]) => {
    if (latencies.length !== options.lines + options.warmup) {
      throw new Error(`expected ${options.lines + options.warmup} lines, got ${latencies.length}`);
    }
    return summarize(latencies.slice(options.warmup));
  };
  return { follow: measured(follow), tail: measured(tail), rawGrpc: measured(rawGrpc) };
}

async function rawGrpcLatencies(home: string, lines: number): Promise<number[]> {
  const server = await startRawServer(home, { ticks: lines });
  const client = connectJobService({ addr: server.address, home });
  try {
    // Handshake first (the raw server answers UNIMPLEMENTED), as for the follower.
    await client.getJobs().catch(() => undefined);
    const clock = new LineClock();
    for await (const chunk of client.followJobLog({ jobId: 0n })) clock.receive(chunk, realtimeMicros());
    return clock.latencies;
  } finally {
    client.close();
    await server.stop();
  }
}

async function followLatencies(daemon: BenchDaemon, writer: string[]): Promise<number[]> {
  const client = daemon.client();
  await client.getJobs();
  const clock = new LineClock();
  const { job } = await client.startJob({ args: writer });
  for await (const chunk of client.followJobLog({ jobId: job?.id ?? 0n })) {
    clock.receive(chunk, realtimeMicros());
  }
  return clock.latencies;
}

/** `tail -f` done the way jobberd does it: an inotify watch, then read to EOF. */
async function tailLatencies(writer: string[], path: string): Promise<number[]> {
  const clock = new LineClock();
  const writeFd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
  const readFd = openSync(path, "r");
  const buffer = Buffer.allocUnsafe(256 * 1024);
  let position = 0;
  const readToEnd = () => {
    for (;;) {
      const bytes = readSync(readFd, buffer, 0, buffer.length, position);
      if (bytes === 0) return;
      const receivedAt = realtimeMicros();
      position += bytes;
      clock.receive(buffer.subarray(0, bytes), receivedAt);
    }
  };
  const watcher = watch(path, readToEnd);
  try {
    const child = Bun.spawn(writer, {
      stdin: "ignore",
      stdout: writeFd,
      stderr: "inherit",
      env: { PATH: "/usr/bin:/bin" },
    });
    await child.exited;
    readToEnd();
  } finally {
    watcher.close();
    closeSync(readFd);
    closeSync(writeFd);
  }
  return clock.latencies;
}
