// A real jobberd process for the benchmarks: a free port, temporary home and
// state directories under /var/tmp, its RSS and CPU time read from /proc, and
// a cleanup that leaves no job, cgroup or directory behind.
//
// Nothing here reads jobberd's log, whose wording and format are jobberd's to
// change: its port and its handlers' timings come from bench/daemon-hook.ts,
// loaded into it with `bun --preload`; the log is kept only to show when
// something fails.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { stripVTControlCharacters } from "node:util";
import type { Subprocess } from "bun";
import { connectJobService, type JobClient, JobStatus } from "../proto/src/index.ts";
import { onCleanup } from "./cleanup";
import type { HookQuery, HookReport } from "./daemon-hook";
import { cpuSeconds, minorFaults, rssKiB } from "./proc";

const MAIN = resolve(import.meta.dir, "../apps/daemon/src/main.ts");
const HOOK = resolve(import.meta.dir, "daemon-hook.ts");
/** Not /tmp: jobs get a private /tmp. */
export const BENCH_ROOT = "/var/tmp";
const LISTEN_HOST = "127.0.0.1";
/** Start-up includes bootstrapping a CA and keys; past this, something is wrong. */
const BIND_TIMEOUT_MS = 30_000;
let daemons = 0;
const KEEP_LOG_CHARS = 64 * 1024;

export interface BenchDaemon {
  pid: number;
  address: string;
  home: string;
  stateDir: string;
  /** The cgroup under which it puts its jobs' cgroups; this daemon's alone. */
  cgroupParent: string;
  /** A new connection with the identity jobberd bootstrapped; closed by cleanup. */
  client(): JobClient;
  /** Resident set size now (VmRSS), in KiB. */
  rssKiB(): number;
  /** User + system CPU time so far, in seconds. */
  cpuSeconds(): number;
  /** Page faults so far (minor: no I/O, e.g. copy-on-write). */
  minorFaults(): number;
  /** The tail of what it logged, for error messages. */
  logTail(): string;
  /**
   * Time (ms) each successful `rpc` call spent in jobberd's handler, oldest
   * first, as bench/daemon-hook.ts measured it inside jobberd.
   */
  serverTimes(rpc: string): Promise<number[]>;
  /** Stops every job still running (StopJob) and checks that no process, cgroup or job is left. */
  stopAllJobs(): Promise<LeftoverReport>;
  /** Stops jobs, kills jobberd, removes its directories. Safe to call twice. */
  cleanup(): Promise<void>;
}

export interface LeftoverReport {
  jobs: number;
  /** Jobs without a final status after stopping everything. */
  unfinished: number[];
  /** Job cgroup directories that still exist under the daemon's cgroup parent. */
  cgroups: string[];
}

export interface DaemonOptions {
  /** Where its home and state directory go; BENCH_ROOT unless set. */
  root?: string;
  extraArgs?: string[];
  /**
   * Flags (name without dashes → value) passed only if this jobberd has them,
   * such as per-tenant quotas the bench must raise past its own sizes (it runs
   * everything as one tenant). A jobberd without them has no such limit.
   */
  ifSupported?: Record<string, string>;
}

let knownFlags: Set<string> | undefined;

/** The flags jobberd's --help lists (its command-line contract). */
function daemonFlags(): Set<string> {
  if (!knownFlags) {
    const help = Bun.spawnSync([process.execPath, MAIN, "--help"], {
      stdin: "ignore",
      env: { ...process.env, NO_COLOR: "1" },
    });
    // Colours are escape sequences between the dashes and the name.
    const text = stripVTControlCharacters(`${help.stdout.toString()}${help.stderr.toString()}`);
    knownFlags = new Set([...text.matchAll(/--([a-z][a-z-]*)/g)].map((match) => match[1] as string));
  }
  return knownFlags;
}

function supportedArgs(flags: Record<string, string> | undefined): string[] {
  if (!flags) return [];
  const known = daemonFlags();
  return Object.entries(flags)
    .filter(([flag]) => known.has(flag))
    .flatMap(([flag, value]) => [`--${flag}`, value]);
}

export async function startBenchDaemon(options: DaemonOptions = {}): Promise<BenchDaemon> {
  const top = mkdtempSync(join(options.root ?? BENCH_ROOT, "jobber-bench-"));
  const home = join(top, "home");
  const stateDir = join(top, "state");
  // A cgroup parent of its own: jobs of other daemons on this host (tests)
  // are named by their ids too, and cleanup may kill whatever is in it.
  const cgroupParent = `jobber-bench-${process.pid}-${++daemons}`;
  let bound: (port: number) => void = () => {};
  const serverTimeAnswers = new Map<string, ((milliseconds: number[]) => void)[]>();
  const child = Bun.spawn(
    [
      process.execPath,
      "--preload",
      HOOK,
      MAIN,
      "--listen",
      `${LISTEN_HOST}:0`,
      "--home",
      home,
      "--state-dir",
      stateDir,
      "--cgroup-parent",
      cgroupParent,
      ...supportedArgs(options.ifSupported),
      ...(options.extraArgs ?? []),
    ],
    {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, NO_COLOR: "1" },
      // Its own process group: Ctrl+C reaches the benchmark alone, which then
      // stops the jobs through jobberd before it kills it.
      detached: true,
      ipc(message: HookReport) {
        if (message.type === "bound") bound(message.port);
        else serverTimeAnswers.get(message.rpc)?.shift()?.(message.milliseconds);
      },
    },
  );
  const clients: JobClient[] = [];
  let log = "";
  let bindTimer: Timer | undefined;
  const port = new Promise<number>((resolvePort, reject) => {
    bound = resolvePort;
    bindTimer = setTimeout(
      () => reject(new Error(`jobberd did not listen within ${BIND_TIMEOUT_MS / 1000} s:\n${log}`)),
      BIND_TIMEOUT_MS,
    );
    child.exited.then((code) => reject(new Error(`jobberd exited (${code}) before listening:\n${log}`)));
  });
  // The pipes must be drained or jobberd blocks; what it says is kept for errors.
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream)
      log = (log + decoder.decode(chunk, { stream: true })).slice(-KEEP_LOG_CHARS);
  };
  void pump(child.stdout);
  void pump(child.stderr);

  let cleaned = false;
  const daemon: BenchDaemon = {
    pid: child.pid,
    address: "",
    home,
    stateDir,
    cgroupParent,
    client() {
      const client = connectJobService({ addr: daemon.address, home });
      clients.push(client);
      return client;
    },
    rssKiB: () => rssKiB(child.pid),
    cpuSeconds: () => cpuSeconds(child.pid),
    minorFaults: () => minorFaults(child.pid),
    logTail: () => log,
    async serverTimes(rpc) {
      const exited = child.exited.then((code) => {
        throw new Error(`jobberd exited (${code}) before it told its ${rpc} times:\n${log}`);
      });
      const answer = new Promise<number[]>((resolveAnswer) => {
        const waiting = serverTimeAnswers.get(rpc) ?? [];
        waiting.push(resolveAnswer);
        serverTimeAnswers.set(rpc, waiting);
      });
      child.send({ type: "serverTimes", rpc } satisfies HookQuery);
      return Promise.race([answer, exited]);
    },
    stopAllJobs: () => stopAllJobs(daemon, child),
    async cleanup() {
      if (cleaned) return;
      cleaned = true;
      try {
        if (child.exitCode === null && daemon.address !== "") await stopAllJobs(daemon, child);
      } finally {
        for (const client of clients) client.close();
        if (child.exitCode === null) {
          child.kill("SIGKILL");
          await child.exited;
        }
        await removeCgroupParent(cgroupParent);
        rmSync(top, { recursive: true, force: true });
      }
    },
  };
  onCleanup(`jobberd ${child.pid}`, () => daemon.cleanup());
  try {
    daemon.address = `${LISTEN_HOST}:${await port}`;
  } finally {
    clearTimeout(bindTimer);
  }
  return daemon;
}

/** Runs `task` over `items`, at most `limit` at a time. */
export async function forEachLimited<T>(
  items: T[],
  limit: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

async function stopAllJobs(daemon: BenchDaemon, child: Subprocess): Promise<LeftoverReport> {
  if (child.exitCode === null) {
    const client = connectJobService({ addr: daemon.address, home: daemon.home });
    try {
      const { jobs } = await client.getJobs();
      const running = jobs.filter((job) => job.status === JobStatus.RUNNING);
      await forEachLimited(running, 64, async (job) => {
        try {
          await client.stopJob({ jobId: job.id });
        } catch (error) {
          // FAILED_PRECONDITION: it ended on its own meanwhile.
          if ((error as { code?: number }).code !== 9) throw error;
        }
      });
    } finally {
      client.close();
    }
  }
  return leftovers(daemon.stateDir, daemon.cgroupParent);
}

interface JobDir {
  id: number;
  dir: string;
}

function jobDirs(stateDir: string): JobDir[] {
  const jobsDir = join(stateDir, "jobs");
  if (!existsSync(jobsDir)) return [];
  const dirs: JobDir[] = [];
  for (const tenant of readdirSync(jobsDir)) {
    for (const id of readdirSync(join(jobsDir, tenant))) {
      if (/^\d+$/.test(id)) dirs.push({ id: Number(id), dir: join(jobsDir, tenant, id) });
    }
  }
  return dirs;
}

const CGROUP_ROOT = "/sys/fs/cgroup";

/**
 * The daemon's cgroup parent in every hierarchy: the lifecycle one (v2, or
 * the hybrid host's unified tree) first, then the v1 controllers.
 */
function cgroupParents(parent: string): string[] {
  if (existsSync(join(CGROUP_ROOT, "cgroup.controllers"))) return [join(CGROUP_ROOT, parent)];
  return ["unified", "cpu", "memory", "blkio", "pids"]
    .map((hierarchy) => join(CGROUP_ROOT, hierarchy, parent))
    .filter((dir) => existsSync(join(dir, "..", "cgroup.procs")));
}

function childCgroups(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => join(dir, entry.name));
  } catch {
    return [];
  }
}

/** Every cgroup under `dir`, deepest first: jobs before their tenant's. */
function descendantCgroups(dir: string): string[] {
  return childCgroups(dir).flatMap((child) => [...descendantCgroups(child), child]);
}

function leftovers(stateDir: string, cgroupParent: string): LeftoverReport {
  const dirs = jobDirs(stateDir);
  const unfinished = dirs.filter((job) => !existsSync(join(job.dir, "status.json"))).map((job) => job.id);
  // Tenant cgroups count too: each goes with its tenant's last job.
  return { jobs: dirs.length, unfinished, cgroups: cgroupParents(cgroupParent).flatMap(descendantCgroups) };
}

/**
 * Last resort when jobberd could not stop its jobs: kills everything in its
 * cgroup parent (this benchmark's alone), then removes the job cgroups and the
 * parent. A killed init is reaped by the host's init, so a cgroup may stay
 * busy for a moment.
 */
async function removeCgroupParent(cgroupParent: string): Promise<void> {
  const [lifecycle] = cgroupParents(cgroupParent);
  for (const cgroup of lifecycle ? descendantCgroups(lifecycle) : []) {
    for (const pid of readFileSync(join(cgroup, "cgroup.procs"), "utf8").split("\n").filter(Boolean)) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        // Exited meanwhile.
      }
    }
  }
  for (const parent of cgroupParents(cgroupParent)) {
    for (const dir of [...descendantCgroups(parent), parent]) {
      for (let attempt = 0; attempt < 40; attempt++) {
        try {
          rmdirSync(dir);
          break;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "EBUSY") break;
          await Bun.sleep(50);
        }
      }
    }
  }
}
