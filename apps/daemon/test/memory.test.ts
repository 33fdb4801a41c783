// jobberd's own memory under clients that try to make it hold theirs:
// followers that never read, and log snapshots by the dozen, read or not.
// Before the bounds: 200 stalled followers took 90 → 1,077 MB (4.9 MB
// each), 40 concurrent snapshots of a 63 MiB log 90 → 3,502 MB. The bounds
// asserted here are generous; `bun run bench` reports the figures.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { status } from "@grpc/grpc-js";
import { connectJobService, type JobClient } from "@jobber/proto";
import {
  concurrentSnapshots,
  MiB,
  peakRssMiB,
  resetPeakRss,
  settledRssMiB,
  stalledFollowers,
  stalledSnapshots,
  type Target,
} from "../../../bench/abusive-clients";
import { collect, type DaemonProcess, startDaemonProcess } from "./fixture";

let daemon: DaemonProcess;
let client: JobClient;
let target: Target;
/** A finished job whose log is 63 MiB: the size of the issue's attack. */
let bigLog: bigint;
const BIG_LOG_BYTES = 63 * MiB;

beforeAll(async () => {
  // Streams of their own for the 200 followers: the stream quota is tested in quotas.test.ts.
  daemon = await startDaemonProcess(["--tenant-streams", "1000"]);
  client = daemon.client();
  target = { address: daemon.address, home: daemon.home, pid: daemon.process.pid };
  const { job } = await client.startJob({
    args: ["head", "-c", String(BIG_LOG_BYTES), "/dev/zero"],
    limits: { logBytes: BigInt(BIG_LOG_BYTES) },
  });
  bigLog = job?.id as bigint;
  // The follow ends when the job has ended and all of it is written.
  expect((await collect(client.followJobLog({ jobId: bigLog, offset: BigInt(BIG_LOG_BYTES) }))).length).toBe(
    0,
  );
});

afterAll(async () => {
  await daemon.cleanup();
});

const roundTrip = () => client.getJobs();

function figures(label: string, values: Record<string, number>): void {
  const shown = Object.entries(values).map(([key, value]) => `${key} ${value.toFixed(1)}`);
  console.log(`[figures] ${label}: ${shown.join(", ")}`);
}

test("200 followers that never read hold well under 1 MiB each", async () => {
  const before = await settledRssMiB(target.pid, roundTrip);
  const followers = await stalledFollowers(target, bigLog, 200);
  try {
    const during = await settledRssMiB(target.pid, roundTrip, 40);
    const each = (during - before) / 200;
    figures("200 followers of a 63 MiB log that never read (MiB)", { before, during, each });
    // Each would take the whole 63 MiB unbounded; grpc-js alone buffered ~5 MB per stream.
    // (Measured ~0.5 MiB: two 64 KiB messages read, encoded and framed, and garbage not yet collected.)
    expect(each).toBeLessThan(1);
    // The daemon still answers, and a follower that does read gets every byte.
    expect((await collect(client.followJobLog({ jobId: bigLog }))).length).toBe(BIG_LOG_BYTES);
  } finally {
    followers.close();
  }
});

test("40 concurrent snapshots of a 63 MiB log share a budget: each gets the whole log or RESOURCE_EXHAUSTED", async () => {
  const before = await settledRssMiB(target.pid, roundTrip);
  resetPeakRss(target.pid);
  const clients = [client, daemon.client(), daemon.client(), daemon.client()];
  const answers = await concurrentSnapshots(clients, bigLog, 40);
  const peak = peakRssMiB(target.pid);
  const served = answers.filter((answer) => "bytes" in answer);
  figures("40 concurrent snapshots of a 63 MiB log (MiB)", {
    before,
    peak,
    growth: peak - before,
    served: served.length,
  });
  for (const answer of served) expect(answer).toEqual({ bytes: BIG_LOG_BYTES });
  // One tenant's go one at a time, 16 more may wait; the rest are told to retry.
  for (const answer of answers.filter((each) => "code" in each)) {
    expect(answer).toMatchObject({ code: status.RESOURCE_EXHAUSTED });
    expect((answer as { details: string }).details).toContain("retry when they are done");
  }
  expect(served.length).toBeGreaterThanOrEqual(17);
  // Unbounded, it held all 40 at once: 3.4 GB more.
  expect(peak - before).toBeLessThan(800);
});

test("snapshots never read hold their tenant's share and no more; other tenants are served meanwhile", async () => {
  const otherHome = await daemon.issueClient("neighbour");
  const neighbour = connectJobService({ addr: daemon.address, home: otherHome });
  const { job: neighbourJob } = await neighbour.startJob({ args: ["echo", "mine"] });
  await collect(neighbour.followJobLog({ jobId: neighbourJob?.id }));
  const before = await settledRssMiB(target.pid, roundTrip);
  const stalled = await stalledSnapshots(target, bigLog, 10);
  let pending: Promise<number> | undefined;
  try {
    const during = await settledRssMiB(target.pid, roundTrip, 40);
    figures("10 snapshots of a 63 MiB log never read (MiB)", { before, during, growth: during - before });
    // One holds the tenant's share; the other nine wait behind it, holding nothing.
    expect(during - before).toBeLessThan(600);
    // Another tenant's snapshot is not held up…
    expect((await neighbour.getJobLog({ jobId: neighbourJob?.id })).log.toString()).toBe("mine\n");
    // … and this tenant's next one waits until the unread ones are gone.
    pending = client.getJobLog({ jobId: bigLog }).then(({ log }) => log.length);
  } finally {
    stalled.close();
    neighbour.close();
  }
  expect(await pending).toBe(BIG_LOG_BYTES);
});
