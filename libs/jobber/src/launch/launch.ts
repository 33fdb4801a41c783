// The typed front of launcher.c: the only module that touches FFI.

import { cc, ptr } from "bun:ffi";
import { closeSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { constants, tmpdir } from "node:os";
import { join } from "node:path";
import launcherSource from "./launcher.c" with { type: "text" };

export interface LaunchSpec {
  /** Open directory fd of the job's cgroup v2 directory (it is born there). */
  cgroupFd: number;
  /** Open `cgroup.procs` fds of the job's cgroup v1 controllers (v1-hybrid hosts). */
  cgroupV1ProcsFds: number[];
  /** The job's log, opened for appending: the command's stdout and stderr. */
  logFd: number;
  /** The job's directory: init writes the exit status there. */
  jobDirFd: number;
  /** argv[0] as the user gave it: the launcher resolves it in the job's view, as the job's user. */
  argv: string[];
  env: string[];
  /** Where argv[0] is looked up when it has no slash. */
  searchPath: string;
  /** Directories hidden from the job under an empty read-only tmpfs. */
  maskedDirs: string[];
  /** Files hidden from the job under /dev/null. */
  maskedFiles: string[];
  cwd: string;
  hostname: string;
  /** The user the command runs as, inside its user namespace. */
  uid: number;
  gid: number;
  /** The job's user namespace maps ids [0, idCount) to [hostIdBase, hostIdBase + idCount). */
  hostIdBase: number;
  idCount: number;
  /** The largest file the command may write (its log among them); 0 = no limit. */
  logLimitBytes: number;
  /** RLIMIT_NOFILE, RLIMIT_SIGPENDING, RLIMIT_MSGQUEUE of the command. */
  rlimits: { nofile: number; sigpending: number; msgqueue: number };
}

export interface Launched {
  /** Host PID of the job's init. */
  pid: number;
  /** A pidfd of init, for signals and reaping immune to PID reuse. */
  pidfd: number;
  /**
   * Resolves once init knows whether the command runs: "ok", or the step
   * that failed and its errno. undefined when init ended without saying
   * (killed during its set-up).
   */
  ready: Promise<LaunchOutcome | undefined>;
}

export type LaunchOutcome = { ok: true } | { ok: false; step: string; errno: number };

/** struct launch_config in launcher.c: every field an int64, in this order. */
const CONFIG_FIELDS = [
  "cgroup_fd",
  "log_fd",
  "dir_fd",
  "uid",
  "gid",
  "host_id_base",
  "id_count",
  "log_limit",
  "nofile",
  "sigpending",
  "msgqueue",
  "ready_fd",
  "v1_count",
] as const;
const MAX_V1_CONTROLLERS = 8;
const CONFIG_SLOTS = CONFIG_FIELDS.length + MAX_V1_CONTROLLERS;

type Launcher = ReturnType<typeof compile>;
let launcher: Launcher | undefined;

function compile() {
  // TinyCC reads its source from the real filesystem, which a `bun build
  // --compile` binary does not have: write the embedded source to a private
  // temporary directory first.
  const dir = mkdtempSync(join(tmpdir(), "jobber-launcher-"));
  const sourcePath = join(dir, "launcher.c");
  try {
    writeFileSync(sourcePath, launcherSource, { mode: 0o600 });
    const { symbols } = cc({
      source: sourcePath,
      symbols: {
        jobber_launch: { args: ["ptr", "ptr", "ptr"], returns: "i32" },
        jobber_config_size: { args: [], returns: "i32" },
        jobber_reap: { args: ["i32"], returns: "i32" },
        jobber_signal: { args: ["i32", "i32"], returns: "i32" },
        jobber_pidfd_open: { args: ["i32"], returns: "i32" },
      },
    });
    // The two sides of the parameter block must agree, or every launch would misread it.
    const size = symbols.jobber_config_size();
    if (size !== CONFIG_SLOTS * 8) {
      throw new Error(`launcher.c's launch_config is ${size} bytes, launch.ts writes ${CONFIG_SLOTS * 8}`);
    }
    return symbols;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function symbols(): Launcher {
  launcher ??= compile();
  return launcher;
}

/** A NUL-terminated C string and a NULL-terminated array of them, kept alive by `keep`. */
function cStrings(values: string[], keep: unknown[]): BigUint64Array {
  const pointers = new BigUint64Array(values.length + 1);
  values.forEach((value, i) => {
    pointers[i] = cString(value, keep);
  });
  keep.push(pointers);
  return pointers;
}

function cString(value: string, keep: unknown[]): bigint {
  const bytes = Buffer.from(`${value}\0`);
  keep.push(bytes);
  return BigInt(ptr(bytes));
}

export class LaunchError extends Error {
  constructor(
    readonly call: string,
    readonly errno: number,
  ) {
    super(`${call} failed: ${errnoName(errno)}`);
  }
}

export function errnoName(errno: number): string {
  const entry = Object.entries(constants.errno).find(([, number]) => number === errno);
  return entry ? entry[0] : `errno ${errno}`;
}

/** "ok" or "failed <step> <errno>", as init writes it to the ready pipe. */
export function parseOutcome(text: string): LaunchOutcome | undefined {
  const [word, step, errno] = text.trim().split(" ");
  if (word === "ok") return { ok: true };
  if (word === "failed" && step && Number.isInteger(Number(errno))) {
    return { ok: false, step, errno: Number(errno) };
  }
  return undefined;
}

/** Reads init's one line from the ready pipe without blocking the event loop, then closes it. */
async function readOutcome(fd: number): Promise<LaunchOutcome | undefined> {
  try {
    return parseOutcome(await Bun.file(fd).text());
  } finally {
    closeSync(fd);
  }
}

/** Starts init in a new cgroup and namespaces; it forks and execs the command. */
export function launch(spec: LaunchSpec): Launched {
  if (spec.cgroupV1ProcsFds.length > MAX_V1_CONTROLLERS) throw new Error("too many cgroup v1 controllers");
  const keep: unknown[] = [];
  const values: Record<(typeof CONFIG_FIELDS)[number], number> = {
    cgroup_fd: spec.cgroupFd,
    log_fd: spec.logFd,
    dir_fd: spec.jobDirFd,
    uid: spec.uid,
    gid: spec.gid,
    host_id_base: spec.hostIdBase,
    id_count: spec.idCount,
    log_limit: spec.logLimitBytes,
    nofile: spec.rlimits.nofile,
    sigpending: spec.rlimits.sigpending,
    msgqueue: spec.rlimits.msgqueue,
    ready_fd: -1,
    v1_count: spec.cgroupV1ProcsFds.length,
  };
  const config = new BigInt64Array(CONFIG_SLOTS);
  CONFIG_FIELDS.forEach((field, i) => {
    config[i] = BigInt(values[field]);
  });
  spec.cgroupV1ProcsFds.forEach((fd, i) => {
    config[CONFIG_FIELDS.length + i] = BigInt(fd);
  });
  // struct launch_strings, in launcher.c's order.
  const strings = new BigUint64Array([
    BigInt(ptr(cStrings(spec.argv, keep))),
    BigInt(ptr(cStrings(spec.env, keep))),
    BigInt(ptr(cStrings(spec.maskedDirs, keep))),
    BigInt(ptr(cStrings(spec.maskedFiles, keep))),
    cString(spec.searchPath, keep),
    cString(spec.cwd, keep),
    cString(spec.hostname, keep),
  ]);
  const out = new Int32Array(3);
  const rc = symbols().jobber_launch(ptr(config), ptr(strings), ptr(out));
  // A use of `keep` after the call: the C strings it holds must outlive it,
  // and an optimising compiler may end a variable's life at its last use.
  keep.length = 0;
  if (rc < 0) throw new LaunchError("clone3", -rc);
  return { pid: out[0] as number, pidfd: out[1] as number, ready: readOutcome(out[2] as number) };
}

/** Reaps an exited init through its pidfd; false while it still runs. */
export function reap(pidfd: number): boolean {
  const rc = symbols().jobber_reap(pidfd);
  if (rc < 0) throw new LaunchError("waitid", -rc);
  return rc === 0;
}

/** Sends a signal through a pidfd. False when the process is already gone. */
export function signalPidfd(pidfd: number, signal: number): boolean {
  const rc = symbols().jobber_signal(pidfd, signal);
  if (rc === -constants.errno.ESRCH) return false;
  if (rc < 0) throw new LaunchError("pidfd_send_signal", -rc);
  return true;
}

/** Opens a pidfd of a running process; undefined when it no longer exists. */
export function openPidfd(pid: number): number | undefined {
  const fd = symbols().jobber_pidfd_open(pid);
  if (fd === -constants.errno.ESRCH) return undefined;
  if (fd < 0) throw new LaunchError("pidfd_open", -fd);
  return fd;
}
