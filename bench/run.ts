// `bun run bench [-- --quick]`: jobberd's figures beside their baselines,
// measured in one run, printed as a table and written to bench/results.json.
//
// Every figure comes from a real jobberd process (bench/daemon.ts): start,
// follow latency and throughput share one; the start with the state
// directory on tmpfs gets its own, and so does the many-jobs part, so that
// its idle RSS is not inflated by the others.
// Everything started is stopped and removed at the end, on failure and on
// Ctrl+C too (bench/cleanup.ts).
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { benchAbuse } from "./abuse";
import { cleanupAll, onCleanup } from "./cleanup";
import { BENCH_ROOT, type BenchDaemon, startBenchDaemon } from "./daemon";
import { benchFollowLatency } from "./follow-latency";
import { describeMachine, fileCreationMicros } from "./machine";
import { benchManyJobs, hostLimits } from "./many-jobs";
import { type Figures, formatTable, judge } from "./report";
import { benchStart, type StartResult } from "./start";
import { benchThroughput } from "./throughput";

const RESULTS = resolve(import.meta.dir, "results.json");
const MIB = 1024 * 1024;

const SIZES = {
  full: {
    start: { samples: 500, warmup: 50 },
    startTmpfs: { samples: 200, warmup: 20 },
    latency: { lines: 2000, warmup: 100 },
    throughput: { bytes1: 1024 * MIB, bytesN: 64 * MIB, followers: 100 },
    manyJobs: { jobs: 1000, probes: 200, warmup: 20 },
    abuse: { logBytes: 63 * MIB, followers: 200, snapshots: 40, unread: 10 },
  },
  quick: {
    start: { samples: 200, warmup: 20 },
    startTmpfs: { samples: 50, warmup: 5 },
    latency: { lines: 400, warmup: 100 },
    throughput: { bytes1: 256 * MIB, bytesN: 8 * MIB, followers: 100 },
    manyJobs: { jobs: 400, probes: 100, warmup: 10 },
    abuse: { logBytes: 63 * MIB, followers: 200, snapshots: 40, unread: 10 },
  },
};

// One tenant runs every job and stream here: room for the many jobs and the 100 followers.
const DAEMON_ARGS = ["--stop-grace", "1s", "--tenant-jobs", "2000", "--tenant-streams", "1000"];

/** Set on Ctrl+C: cleanup is under way, and what fails meanwhile is no news. */
let interrupted = false;

function progress(message: string): void {
  process.stderr.write(`▸ ${message}\n`);
}

async function withDaemon<T>(root: string | undefined, run: (daemon: BenchDaemon) => Promise<T>): Promise<T> {
  const daemon = await startBenchDaemon({ root, extraArgs: DAEMON_ARGS });
  try {
    return await run(daemon);
  } catch (error) {
    if (!interrupted) process.stderr.write(`jobberd's last words:\n${daemon.logTail().slice(-4000)}\n`);
    throw error;
  } finally {
    await daemon.cleanup();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: "boolean", default: false } } });
  const mode = values.quick ? "quick" : "full";
  const sizes = SIZES[mode];
  const began = performance.now();
  const scratchDir = mkdtempSync(join(BENCH_ROOT, "jobber-bench-scratch-"));
  onCleanup("scratch directory", () => rmSync(scratchDir, { recursive: true, force: true }));

  const fileCreation = fileCreationMicros(BENCH_ROOT);
  progress(`start latency: ${sizes.start.samples} StartJob and Bun.spawn`);
  const { start, startTmpfs, latency, throughput } = await withDaemon(undefined, async (daemon) => {
    const start = await benchStart(daemon, sizes.start);
    // The same StartJob right away with the state directory on tmpfs, where
    // creating a file costs microseconds whatever the disk's filesystem does.
    let startTmpfs: StartResult | undefined;
    if (existsSync("/dev/shm")) {
      progress("start latency again, state directory on tmpfs (/dev/shm)");
      startTmpfs = await withDaemon("/dev/shm", (tmpfsDaemon) => benchStart(tmpfsDaemon, sizes.startTmpfs));
    }
    progress(
      `follow latency: ${sizes.latency.lines} lines, 10 ms apart, to a tail, a follower and a raw grpc-js stream`,
    );
    const latency = await benchFollowLatency(daemon, { ...sizes.latency, scratchDir });
    const { bytes1, bytesN, followers } = sizes.throughput;
    progress(`throughput: ${bytes1 / MIB} MiB to 1 follower, ${bytesN / MIB} MiB to ${followers}`);
    const throughput = await benchThroughput(daemon, sizes.throughput);
    return { start, startTmpfs, latency, throughput };
  });

  progress(`${sizes.manyJobs.jobs} concurrently running jobs`);
  const { many, limits } = await withDaemon(undefined, async (daemon) => ({
    limits: hostLimits(daemon.pid),
    many: await benchManyJobs(daemon, sizes.manyJobs),
  }));

  progress(
    `daemon memory under abuse: ${sizes.abuse.followers} followers that never read, ${sizes.abuse.snapshots} concurrent snapshots, ${sizes.abuse.unread} unread snapshots of a ${sizes.abuse.logBytes / MIB} MiB log`,
  );
  const abuse = await withDaemon(undefined, (daemon) => benchAbuse(daemon, sizes.abuse));

  const KB = 1000;
  const MB = 1e6;
  const gb = (bytes: number) => bytes / 1e9;
  const figures: Figures = {
    start_p50_ms: start.start.p50,
    start_p99_ms: start.start.p99,
    run_p50_ms: start.run.p50,
    spawn_p50_ms: start.spawn.p50,
    spawn_p99_ms: start.spawn.p99,
    start_server_p50_ms: start.startServer.p50,
    start_server_p99_ms: start.startServer.p99,
    state_fs_file_create_p50_us: fileCreation.p50,
    unary_rtt_p50_ms: start.unaryRoundTrip.p50,
    unary_rtt_p99_ms: start.unaryRoundTrip.p99,
    start_daemon_cpu_ms_per_job: start.daemonCpuMsPerJob,
    start_daemon_minor_faults_per_job: start.daemonMinorFaultsPerJob,
    ...(startTmpfs && {
      start_tmpfs_state_p50_ms: startTmpfs.start.p50,
      start_tmpfs_state_p99_ms: startTmpfs.start.p99,
    }),
    follow_latency_p50_us: latency.follow.p50,
    follow_latency_p99_us: latency.follow.p99,
    tail_latency_p50_us: latency.tail.p50,
    tail_latency_p99_us: latency.tail.p99,
    grpc_raw_latency_p50_us: latency.rawGrpc.p50,
    grpc_raw_latency_p99_us: latency.rawGrpc.p99,
    follow_mbps_1: throughput.follow1.mbps,
    follow_mbps_1_finished: throughput.follow1Finished.mbps,
    grpc_raw_mbps: throughput.raw1.mbps,
    follow_mbps_100: throughput.followN.mbps,
    grpc_raw_mbps_100: throughput.rawN.mbps,
    daemon_cpu_s_per_gb_1: throughput.follow1.serverCpuSeconds / gb(throughput.follow1.bytes),
    raw_server_cpu_s_per_gb_1: throughput.raw1.serverCpuSeconds / gb(throughput.raw1.bytes),
    daemon_cpu_s_per_gb_100: throughput.followN.serverCpuSeconds / gb(throughput.followN.bytes),
    raw_server_cpu_s_per_gb_100: throughput.rawN.serverCpuSeconds / gb(throughput.rawN.bytes),
    jobs_1000_start_p50_ms: many.startWhileRunning.p50,
    jobs_1000_start_p99_ms: many.startWhileRunning.p99,
    jobs_1000_ramp_start_p50_ms: many.rampStart.p50,
    jobs_1000_ramp_start_p99_ms: many.rampStart.p99,
    idle_rss_mb: (many.idleRssKiB * 1024) / MB,
    jobs_1000_rss_mb: (many.loadedRssKiB * 1024) / MB,
    jobs_1000_rss_per_job_kb: ((many.loadedRssKiB - many.idleRssKiB) * 1024) / KB / many.jobs,
    jobs_1000_job_pss_mb: (many.jobProcessesPssKiB * 1024) / MB,
    jobs_1000_job_pss_per_job_kb: (many.jobProcessesPssKiB * 1024) / KB / many.jobs,
    jobs_1000_stop_all_s: many.stopAllSeconds,
    stalled_followers_200_rss_mb: (abuse.stalledFollowerMiB * abuse.stalledFollowers * MIB) / MB,
    stalled_follower_rss_kb: (abuse.stalledFollowerMiB * MIB) / KB,
    snapshots_40_peak_rss_growth_mb: (abuse.snapshotsPeakGrowthMiB * MIB) / MB,
    unread_snapshots_10_rss_growth_mb: (abuse.unreadSnapshotsGrowthMiB * MIB) / MB,
  };
  const targets = judge(figures);
  const wallSeconds = (performance.now() - began) / 1000;
  const results = {
    ...figures,
    targets,
    metadata: {
      mode,
      date: new Date().toISOString(),
      wallSeconds,
      machine: describeMachine(BENCH_ROOT),
      hostLimits: limits,
      units: {
        MB: "10^6 bytes",
        KB: "10^3 bytes",
        latency: "follow/tail: CLOCK_REALTIME at the job's write → at the reader holding the bytes",
      },
      method: {
        start:
          "StartJob(['/bin/true']) on a warm connection, each job ended before the next; spawn: Bun.spawn(['/bin/true']) until it returns (pid available)",
        followLatency:
          "bash writes $EPOCHREALTIME then `read -t 0.01` on a FIFO (no fork per line); follower: FollowJobLog; tail: fs.watch + readSync of a plain file written by the same program outside any job",
        throughput:
          "dd if=/dev/zero bs=1MiB into the job's log; each follower its own connection, handshaken before timing; raw: bench/raw-grpc-server.ts (own process, jobberd's TLS credentials and FollowJobLog definition) streaming the same log file in 64 KiB chunks",
        manyJobs:
          "/bin/sleep 1000 jobs started one after another; probes: StartJob(['/bin/true']) while they run; RSS: VmRSS of jobberd; job PSS: smaps_rollup of each job's init and its children",
      },
      samples: {
        start: start.start.samples,
        spawn: start.spawn.samples,
        startTmpfs: startTmpfs?.start.samples ?? 0,
        followLatency: latency.follow.samples,
        tailLatency: latency.tail.samples,
        rawGrpcLatency: latency.rawGrpc.samples,
        warmup: { start: sizes.start.warmup, latency: sizes.latency.warmup, manyJobs: sizes.manyJobs.warmup },
      },
      sizes: {
        bytes1: throughput.bytes1,
        bytesPerFollowerN: throughput.bytesN,
        followers: throughput.followers,
        manyJobs: many.jobs,
        manyJobsProbes: many.startWhileRunning.samples,
      },
      leftovers: many.leftovers,
    },
    details: { start, startTmpfs, latency, throughput, many, abuse },
  };
  writeFileSync(RESULTS, `${JSON.stringify(results, null, 2)}\n`);
  console.log(formatTable(targets, figures));
  const judged = targets.filter((row) => row.met !== undefined);
  const missed = judged.filter((row) => !row.met).map((row) => row.figure);
  console.log(
    `\ntargets met: ${judged.length - missed.length} of ${judged.length}${missed.length ? ` (missed: ${missed.join("; ")})` : ""}`,
  );
  console.log(
    `${mode} run, ${wallSeconds.toFixed(1)} s; sizes: ${throughput.bytes1 / MIB} MiB to 1 follower, ` +
      `${throughput.bytesN / MIB} MiB × ${throughput.followers} followers, ${many.jobs} running jobs. ` +
      `Written to ${RESULTS}`,
  );
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    progress(`${signal}: cleaning up`);
    cleanupAll(progress).finally(() => process.exit(130));
  });
}

try {
  await main();
} catch (error) {
  process.exitCode = 1;
  if (!interrupted) console.error(error);
} finally {
  await cleanupAll(progress);
}
