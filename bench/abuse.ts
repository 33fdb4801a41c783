// jobberd's memory under clients that try to make it hold theirs (issue 10):
// followers that never read (a hand-rolled HTTP/2 client that grants every
// window and reads nothing), GetJobLog snapshots by the dozen, and snapshots
// never read. Each figure is jobberd's RSS growth (MiB) over its RSS before.
// The tests (apps/daemon/test/memory.test.ts) bound the same attacks.

import { JobStatus } from "../proto/src/index.ts";
import {
  concurrentSnapshots,
  MiB,
  peakRssMiB,
  resetPeakRss,
  settledRssMiB,
  stalledFollowers,
  stalledSnapshots,
} from "./abusive-clients";
import type { BenchDaemon } from "./daemon";

export interface AbuseResult {
  logBytes: number;
  idleRssMiB: number;
  stalledFollowers: number;
  /** RSS growth with them all open, per follower (MiB). */
  stalledFollowerMiB: number;
  snapshots: number;
  /** Peak RSS growth (the kernel's high-water mark) while they ran (MiB). */
  snapshotsPeakGrowthMiB: number;
  snapshotsServed: number;
  snapshotsRefused: number;
  unreadSnapshots: number;
  /** RSS growth with them open (MiB). */
  unreadSnapshotsGrowthMiB: number;
}

export async function benchAbuse(
  daemon: BenchDaemon,
  sizes: { logBytes: number; followers: number; snapshots: number; unread: number },
): Promise<AbuseResult> {
  const client = daemon.client();
  const { job } = await client.startJob({
    args: ["head", "-c", String(sizes.logBytes), "/dev/zero"],
    limits: { logBytes: BigInt(sizes.logBytes) },
  });
  const jobId = job?.id as bigint;
  for await (const _ of client.followJobLog({ jobId, offset: BigInt(sizes.logBytes) })) {
    // The follow ends once the whole log is written.
  }
  if ((await client.getJob({ jobId })).job?.status !== JobStatus.EXITED)
    throw new Error("the log writer failed");
  const target = { address: daemon.address, home: daemon.home, pid: daemon.pid };
  const roundTrip = () => client.getJobs();

  const idleRssMiB = await settledRssMiB(daemon.pid, roundTrip);
  const followers = await stalledFollowers(target, jobId, sizes.followers);
  const withFollowers = await settledRssMiB(daemon.pid, roundTrip, 40);
  followers.close();

  const beforeSnapshots = await settledRssMiB(daemon.pid, roundTrip);
  resetPeakRss(daemon.pid);
  const clients = [client, daemon.client(), daemon.client(), daemon.client()];
  const answers = await concurrentSnapshots(clients, jobId, sizes.snapshots);
  const snapshotsPeak = peakRssMiB(daemon.pid);

  const beforeUnread = await settledRssMiB(daemon.pid, roundTrip);
  const unread = await stalledSnapshots(target, jobId, sizes.unread);
  const withUnread = await settledRssMiB(daemon.pid, roundTrip, 40);
  unread.close();

  return {
    logBytes: sizes.logBytes,
    idleRssMiB,
    stalledFollowers: sizes.followers,
    stalledFollowerMiB: (withFollowers - idleRssMiB) / sizes.followers,
    snapshots: sizes.snapshots,
    snapshotsPeakGrowthMiB: snapshotsPeak - beforeSnapshots,
    snapshotsServed: answers.filter((answer) => "bytes" in answer).length,
    snapshotsRefused: answers.filter((answer) => "code" in answer).length,
    unreadSnapshots: sizes.unread,
    unreadSnapshotsGrowthMiB: withUnread - beforeUnread,
  };
}

export { MiB };
