// Many running jobs: jobberd's RSS with none and with `jobs` concurrently
// running `sleep`s, and StartJob latency while they run. Also what the jobs
// themselves hold (their processes' PSS), the daemon's fds and inotify
// watches, and the host limits that bound the count.
import { readFileSync } from "node:fs";
import { type JobClient, JobStatus } from "../proto/src/index.ts";
import type { BenchDaemon, LeftoverReport } from "./daemon";
import { fdCount, inotifyWatches, threadCount, treePssKiB } from "./proc";
import { type Summary, summarize } from "./stats";

export interface ManyJobsResult {
  jobs: number;
  /** jobberd's VmRSS after warm-up, with no job running (KiB). */
  idleRssKiB: number;
  /** jobberd's VmRSS with `jobs` running (KiB). */
  loadedRssKiB: number;
  /** StartJob while `jobs` run (each probe job ends before the next starts). */
  startWhileRunning: Summary;
  /** StartJob of the `jobs` themselves, the k-th with k-1 already running. */
  rampStart: Summary;
  /** Sum of the PSS of every process of the running jobs (init and command), KiB. */
  jobProcessesPssKiB: number;
  daemonFds: { idle: number; loaded: number };
  daemonInotifyWatches: { idle: number; loaded: number };
  daemonThreads: { idle: number; loaded: number };
  /** Wall time to stop them all with StopJob (64 at a time). */
  stopAllSeconds: number;
  leftovers: LeftoverReport;
}

export interface HostLimits {
  pidMax: number;
  threadsMax: number;
  inotifyMaxUserWatches: number;
  inotifyMaxUserInstances: number;
  /** jobberd's RLIMIT_NOFILE (soft). */
  daemonOpenFilesLimit: number;
  /** jobberd's RLIMIT_NPROC (soft); "unlimited" for root in practice. */
  daemonProcessesLimit: string;
}

function readNumber(path: string): number {
  return Number(readFileSync(path, "utf8").trim());
}

function limitOf(pid: number, name: string): string {
  const line = readFileSync(`/proc/${pid}/limits`, "utf8")
    .split("\n")
    .find((candidate) => candidate.startsWith(name));
  return line?.slice(name.length).trim().split(/\s+/)[0] ?? "unknown";
}

export function hostLimits(daemonPid: number): HostLimits {
  return {
    pidMax: readNumber("/proc/sys/kernel/pid_max"),
    threadsMax: readNumber("/proc/sys/kernel/threads-max"),
    inotifyMaxUserWatches: readNumber("/proc/sys/fs/inotify/max_user_watches"),
    inotifyMaxUserInstances: readNumber("/proc/sys/fs/inotify/max_user_instances"),
    daemonOpenFilesLimit: Number(limitOf(daemonPid, "Max open files")),
    daemonProcessesLimit: limitOf(daemonPid, "Max processes"),
  };
}

/** Host PIDs of the inits of the daemon's running jobs (a finished job's PID may be reused). */
function runningInitPids(daemon: BenchDaemon): number[] {
  const pids: number[] = [];
  const glob = new Bun.Glob("jobs/*/*/pid");
  for (const path of glob.scanSync({ cwd: daemon.stateDir, absolute: true })) {
    const pid = Number(readFileSync(path, "utf8"));
    try {
      if (readFileSync(`/proc/${pid}/cgroup`, "utf8").includes(`/${daemon.cgroupParent}/`)) pids.push(pid);
    } catch {
      // Not running.
    }
  }
  return pids;
}

/** StartJob round trip (ms) of a job that ends at once; returns after it has ended. */
async function startAndWait(client: JobClient): Promise<number> {
  const began = performance.now();
  const { job } = await client.startJob({ args: ["/bin/true"] });
  const elapsed = performance.now() - began;
  for await (const _ of client.followJobLog({ jobId: job?.id ?? 0n })) {
    // The stream ends when the job has.
  }
  return elapsed;
}

export async function benchManyJobs(
  daemon: BenchDaemon,
  options: { jobs: number; probes: number; warmup: number },
): Promise<ManyJobsResult> {
  const client = daemon.client();
  for (let i = 0; i < options.warmup; i++) await startAndWait(client);
  // RSS is a level, not an event: give the last job's bookkeeping (and the
  // collector) a moment before reading it.
  await Bun.sleep(500);
  const idleRssKiB = daemon.rssKiB();
  const idle = {
    fds: fdCount(daemon.pid),
    watches: inotifyWatches(daemon.pid),
    threads: threadCount(daemon.pid),
  };

  const ramp: number[] = [];
  for (let i = 0; i < options.jobs; i++) {
    const began = performance.now();
    await client.startJob({ args: ["/bin/sleep", "1000"] });
    ramp.push(performance.now() - began);
  }
  const { jobs } = await client.getJobs();
  const running = jobs.filter((job) => job.status === JobStatus.RUNNING).length;
  if (running !== options.jobs) throw new Error(`${running} jobs running, expected ${options.jobs}`);

  const probes: number[] = [];
  for (let i = 0; i < options.probes; i++) probes.push(await startAndWait(client));
  await Bun.sleep(500);
  const loadedRssKiB = daemon.rssKiB();
  const loaded = {
    fds: fdCount(daemon.pid),
    watches: inotifyWatches(daemon.pid),
    threads: threadCount(daemon.pid),
  };
  const initPids = runningInitPids(daemon);
  if (initPids.length !== options.jobs) {
    throw new Error(`found ${initPids.length} running inits, expected ${options.jobs}`);
  }
  const jobProcessesPssKiB = initPids.reduce((sum, pid) => sum + treePssKiB(pid), 0);

  const stopBegan = performance.now();
  const leftovers = await daemon.stopAllJobs();
  const stopAllSeconds = (performance.now() - stopBegan) / 1000;
  if (leftovers.unfinished.length > 0 || leftovers.cgroups.length > 0) {
    throw new Error(`jobs left after stopping: ${JSON.stringify(leftovers)}`);
  }
  return {
    jobs: options.jobs,
    idleRssKiB,
    loadedRssKiB,
    startWhileRunning: summarize(probes),
    rampStart: summarize(ramp),
    jobProcessesPssKiB,
    daemonFds: { idle: idle.fds, loaded: loaded.fds },
    daemonInotifyWatches: { idle: idle.watches, loaded: loaded.watches },
    daemonThreads: { idle: idle.threads, loaded: loaded.threads },
    stopAllSeconds,
    leftovers,
  };
}
