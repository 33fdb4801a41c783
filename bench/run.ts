// `bun run bench [-- --quick] [-- --out PATH]`: jobberd's figures beside
// their baselines, measured in one run, printed as a table and written as
// JSON: a full run to bench/results.json (tracked) unless --out says
// otherwise; a quick run (CI's) only where --out says, so that it never
// rewrites the tracked file.
//
// Every figure comes from a real jobberd process (bench/daemon.ts): start,
// sustained starts, follow latency and throughput share one; the start with
// the state directory on tmpfs gets its own, and so does the many-jobs part,
// so that its idle RSS is not inflated by the others.
// Everything started is stopped and removed at the end, on failure and on
// Ctrl+C too (bench/cleanup.ts). Targets are reported, never enforced: the
// exit status says only whether the bench ran.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { benchAbuse } from "./abuse";
import { cleanupAll, onCleanup } from "./cleanup";
import { BENCH_ROOT, type BenchDaemon, startBenchDaemon } from "./daemon";
import { benchFollowLatency } from "./follow-latency";
import { describeMachine, fileCreationMicros } from "./machine";
import { benchManyJobs, hostLimits } from "./many-jobs";
import { figuresWithoutMethod, METHODS } from "./methods";
import { type Figures, formatTable, judge } from "./report";
import { benchStart, type StartResult } from "./start";
import { benchStartsPerSecond } from "./starts-per-second";
import { benchThroughput } from "./throughput";
import { benchUnshare, UNSHARE_COMMAND } from "./unshare";

const RESULTS = resolve(import.meta.dir, "results.json");
const MIB = 1024 * 1024;

const SIZES = {
  full: {
    unshare: { samples: 500, warmup: 50 },
    start: { samples: 500, warmup: 50 },
    startTmpfs: { samples: 200, warmup: 20 },
    startsPerSecond: { seconds: 5, clients: 2 },
    latency: { lines: 2000, warmup: 100 },
    throughput: { bytes1: 1024 * MIB, bytesN: 64 * MIB, followers: 100 },
    manyJobs: { jobs: 1000, probes: 200, warmup: 20 },
    abuse: { logBytes: 63 * MIB, followers: 200, snapshots: 40, unread: 10 },
  },
  quick: {
    unshare: { samples: 200, warmup: 20 },
    start: { samples: 200, warmup: 20 },
    startTmpfs: { samples: 50, warmup: 5 },
    startsPerSecond: { seconds: 2, clients: 2 },
    latency: { lines: 400, warmup: 100 },
    throughput: { bytes1: 256 * MIB, bytesN: 8 * MIB, followers: 100 },
    manyJobs: { jobs: 400, probes: 100, warmup: 10 },
    abuse: { logBytes: 63 * MIB, followers: 200, snapshots: 40, unread: 10 },
  },
};

const DAEMON_ARGS = ["--stop-grace", "1s"];

/**
 * Per-tenant quotas, passed to a jobberd that has them: the bench is one
 * tenant, running more jobs and streams at once than a tenant's defaults allow.
 */
function quotaFlags(sizes: (typeof SIZES)["full"]): Record<string, string> {
  return {
    "tenant-jobs": String(sizes.manyJobs.jobs + 100),
    "tenant-streams": String(sizes.throughput.followers + 64),
  };
}

/** Set on Ctrl+C: cleanup is under way, and what fails meanwhile is no news. */
let interrupted = false;

function progress(message: string): void {
  process.stderr.write(`▸ ${message}\n`);
}

async function withDaemon<T>(
  options: { root?: string; quotas: Record<string, string> },
  run: (daemon: BenchDaemon) => Promise<T>,
): Promise<T> {
  const daemon = await startBenchDaemon({
    root: options.root,
    extraArgs: DAEMON_ARGS,
    ifSupported: options.quotas,
  });
  try {
    return await run(daemon);
  } catch (error) {
    if (!interrupted) process.stderr.write(`jobberd's last words:\n${daemon.logTail().slice(-4000)}\n`);
    throw error;
  } finally {
    await daemon.cleanup();
  }
}

/** Where results go: a full run defaults to the tracked file, a quick run to nowhere. */
function resultsPath(mode: "full" | "quick", out: string | undefined): string | undefined {
  if (out !== undefined) return resolve(out);
  return mode === "full" ? RESULTS : undefined;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { quick: { type: "boolean", default: false }, out: { type: "string" } },
  });
  const mode = values.quick ? "quick" : "full";
  const out = resultsPath(mode, values.out);
  const sizes = SIZES[mode];
  const quotas = quotaFlags(sizes);
  const began = performance.now();
  const scratchDir = mkdtempSync(join(BENCH_ROOT, "jobber-bench-scratch-"));
  onCleanup("scratch directory", () => rmSync(scratchDir, { recursive: true, force: true }));

  const fileCreation = fileCreationMicros(BENCH_ROOT);
  const { unshare, start, startTmpfs, starts, latency, throughput } = await withDaemon(
    { quotas },
    async (daemon) => {
      // The baseline right before what it is compared with, on the same busy or idle host.
      progress(`baseline: ${sizes.unshare.samples} × ${UNSHARE_COMMAND}`);
      const unshare = await benchUnshare(sizes.unshare);
      if ("skipped" in unshare) progress(`baseline skipped: ${unshare.skipped}`);
      progress(`start latency: ${sizes.start.samples} StartJob, each followed to its end; Bun.spawn`);
      const start = await benchStart(daemon, sizes.start);
      // The same StartJob right away with the state directory on tmpfs, where
      // creating a file costs microseconds whatever the disk's filesystem does.
      let startTmpfs: StartResult | undefined;
      if (existsSync("/dev/shm")) {
        progress("start latency again, state directory on tmpfs (/dev/shm)");
        startTmpfs = await withDaemon({ root: "/dev/shm", quotas }, (tmpfsDaemon) =>
          benchStart(tmpfsDaemon, sizes.startTmpfs),
        );
      }
      const { seconds, clients } = sizes.startsPerSecond;
      progress(`sustained starts: ${clients} clients starting /bin/true back to back for ${seconds} s`);
      const starts = await benchStartsPerSecond(daemon, sizes.startsPerSecond);
      progress(
        `follow latency: ${sizes.latency.lines} lines, 10 ms apart, to a tail, a follower and a raw grpc-js stream`,
      );
      const latency = await benchFollowLatency(daemon, { ...sizes.latency, scratchDir });
      const { bytes1, bytesN, followers } = sizes.throughput;
      progress(`throughput: ${bytes1 / MIB} MiB to 1 follower, ${bytesN / MIB} MiB to ${followers}`);
      const throughput = await benchThroughput(daemon, sizes.throughput);
      return { unshare, start, startTmpfs, starts, latency, throughput };
    },
  );

  progress(`${sizes.manyJobs.jobs} concurrently running jobs`);
  const { many, limits } = await withDaemon({ quotas }, async (daemon) => ({
    limits: hostLimits(daemon.pid),
    many: await benchManyJobs(daemon, sizes.manyJobs),
  }));

  progress(
    `daemon memory under abuse: ${sizes.abuse.followers} followers that never read, ${sizes.abuse.snapshots} concurrent snapshots, ${sizes.abuse.unread} unread snapshots of a ${sizes.abuse.logBytes / MIB} MiB log`,
  );
  const abuse = await withDaemon(
    { quotas: { ...quotas, "tenant-streams": String(sizes.abuse.followers + 64) } },
    (daemon) => benchAbuse(daemon, sizes.abuse),
  );

  const KB = 1000;
  const MB = 1e6;
  const gb = (bytes: number) => bytes / 1e9;
  const figures: Figures = {
    ...("exit" in unshare && {
      unshare_p50_ms: unshare.exit.p50,
      unshare_p99_ms: unshare.exit.p99,
    }),
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
    daemon_cpu_ms_per_job: start.daemonCpuMsPerJob,
    daemon_minor_faults_per_job: start.daemonMinorFaultsPerJob,
    ...(startTmpfs && {
      start_tmpfs_state_p50_ms: startTmpfs.start.p50,
      start_tmpfs_state_p99_ms: startTmpfs.start.p99,
    }),
    starts_per_s: starts.perSecond,
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
  const undescribed = figuresWithoutMethod(figures);
  if (undescribed.length > 0) throw new Error(`no method in bench/methods.ts for: ${undescribed.join(", ")}`);
  const notes = "skipped" in unshare ? [`no unshare baseline: ${unshare.skipped}`] : [];
  const targets = judge(figures);
  const wallSeconds = (performance.now() - began) / 1000;
  const results = {
    ...figures,
    targets,
    notes,
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
      method: Object.fromEntries(Object.keys(figures).map((key) => [key, METHODS[key]])),
      samples: {
        unshare: "exit" in unshare ? unshare.exit.samples : 0,
        start: start.start.samples,
        spawn: start.spawn.samples,
        startTmpfs: startTmpfs?.start.samples ?? 0,
        followLatency: latency.follow.samples,
        tailLatency: latency.tail.samples,
        rawGrpcLatency: latency.rawGrpc.samples,
        warmup: {
          unshare: sizes.unshare.warmup,
          start: sizes.start.warmup,
          latency: sizes.latency.warmup,
          manyJobs: sizes.manyJobs.warmup,
        },
      },
      sizes: {
        startsSeconds: sizes.startsPerSecond.seconds,
        startsClients: sizes.startsPerSecond.clients,
        startsJobs: starts.jobs,
        bytes1: throughput.bytes1,
        bytesPerFollowerN: throughput.bytesN,
        followers: throughput.followers,
        manyJobs: many.jobs,
        manyJobsProbes: many.startWhileRunning.samples,
      },
      leftovers: many.leftovers,
    },
    details: { unshare, start, startTmpfs, starts, latency, throughput, many, abuse },
  };
  if (out) writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
  console.log(formatTable(targets, figures));
  const judged = targets.filter((row) => row.met !== undefined);
  const missed = judged.filter((row) => !row.met).map((row) => row.figure.trim());
  const unjudged = targets
    .filter((row) => row.target && row.met === undefined)
    .map((row) => row.figure.trim());
  console.log(
    `\ntargets met: ${judged.length - missed.length} of ${judged.length}` +
      `${missed.length ? ` (missed: ${missed.join("; ")})` : ""}` +
      `${unjudged.length ? `; not judged: ${unjudged.join("; ")}` : ""}`,
  );
  for (const note of notes) console.log(`note: ${note}`);
  console.log(
    `${mode} run, ${wallSeconds.toFixed(1)} s; sizes: ${starts.jobs} jobs in ${sizes.startsPerSecond.seconds} s by ` +
      `${sizes.startsPerSecond.clients} clients, ${throughput.bytes1 / MIB} MiB to 1 follower, ` +
      `${throughput.bytesN / MIB} MiB × ${throughput.followers} followers, ${many.jobs} running jobs.`,
  );
  console.log(
    out
      ? `Results written to ${out}`
      : "Results not written: a --quick run writes them only where --out PATH says.",
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
