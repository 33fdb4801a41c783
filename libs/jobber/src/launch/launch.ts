// The typed front of launcher.c: the only module that touches FFI.

import { cc, ptr } from "bun:ffi";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
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
  /** argv[0] must be an absolute path. */
  argv: string[];
  env: string[];
  /** Directories hidden from the job under an empty read-only tmpfs. */
  maskedPaths: string[];
  cwd: string;
  hostname: string;
  uid: number;
  gid: number;
}

export interface Launched {
  /** Host PID of the job's init. */
  pid: number;
  /** A pidfd of init, for signals and reaping immune to PID reuse. */
  pidfd: number;
}

const MAX_V1_CONTROLLERS = 8;

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
    return cc({
      source: sourcePath,
      symbols: {
        jobber_launch: { args: ["ptr", "ptr", "ptr"], returns: "i32" },
        jobber_reap: { args: ["i32"], returns: "i32" },
        jobber_signal: { args: ["i32", "i32"], returns: "i32" },
        jobber_pidfd_open: { args: ["i32"], returns: "i32" },
      },
    }).symbols;
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
    const bytes = Buffer.from(`${value}\0`);
    keep.push(bytes);
    pointers[i] = BigInt(ptr(bytes));
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
    super(`${call} failed: errno ${errno}`);
  }
}

/** Starts init in a new cgroup and namespaces; it forks and execs the command. */
export function launch(spec: LaunchSpec): Launched {
  if (spec.cgroupV1ProcsFds.length > MAX_V1_CONTROLLERS) throw new Error("too many cgroup v1 controllers");
  const keep: unknown[] = [];
  // struct launch_config, see launcher.c.
  const config = new Int32Array(6 + MAX_V1_CONTROLLERS);
  config.set([spec.cgroupFd, spec.logFd, spec.jobDirFd, spec.uid, spec.gid, spec.cgroupV1ProcsFds.length]);
  config.set(spec.cgroupV1ProcsFds, 6);
  // struct launch_strings, see launcher.c.
  const strings = new BigUint64Array([
    BigInt(ptr(cStrings(spec.argv, keep))),
    BigInt(ptr(cStrings(spec.env, keep))),
    BigInt(ptr(cStrings(spec.maskedPaths, keep))),
    cString(spec.cwd, keep),
    cString(spec.hostname, keep),
  ]);
  const out = new Int32Array(2);
  const rc = symbols().jobber_launch(ptr(config), ptr(strings), ptr(out));
  // A use of `keep` after the call: the C strings it holds must outlive it,
  // and an optimising compiler may end a variable's life at its last use.
  keep.length = 0;
  if (rc < 0) throw new LaunchError("clone3", -rc);
  return { pid: out[0] as number, pidfd: out[1] as number };
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
  if (rc === -3 /* ESRCH */) return false;
  if (rc < 0) throw new LaunchError("pidfd_send_signal", -rc);
  return true;
}

/** Opens a pidfd of a running process; undefined when it no longer exists. */
export function openPidfd(pid: number): number | undefined {
  const fd = symbols().jobber_pidfd_open(pid);
  if (fd === -3 /* ESRCH */) return undefined;
  if (fd < 0) throw new LaunchError("pidfd_open", -fd);
  return fd;
}
