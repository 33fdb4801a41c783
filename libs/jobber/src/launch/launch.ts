// The typed front of the C launcher (launcher.c and the files it includes):
// the only module that touches FFI.

import { cc, ptr } from "bun:ffi";
import { closeSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { constants, tmpdir } from "node:os";
import { join } from "node:path";
import jobSource from "./job.c" with { type: "text" };
import kernelSource from "./kernel.h" with { type: "text" };
import launcherSource from "./launcher.c" with { type: "text" };
import seccompSource from "./seccomp.c" with { type: "text" };
import shedSource from "./shed.c" with { type: "text" };

const SOURCES: Record<string, string> = {
  "launcher.c": launcherSource,
  "kernel.h": kernelSource,
  "job.c": jobSource,
  "seccomp.c": seccompSource,
  "shed.c": shedSource,
};

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
  /** A pidfd of init, for signals immune to PID reuse. */
  pidfd: number;
  /**
   * Resolves once init knows whether the command runs: "ok", or the step
   * that failed and its errno. undefined when init ended without saying
   * (killed during its set-up).
   */
  outcome: Promise<LaunchOutcome | undefined>;
  /**
   * true once init has exited: the job is over, its exit recorded, nothing
   * of it left to write to the log. false when released before that.
   */
  exited: Promise<boolean>;
  /** Stops listening for the job's end (the job keeps running). */
  release(): void;
}

export type LaunchOutcome = { ok: true } | { ok: false; step: string; errno: number };

/** struct launch_config in job.c: every field an int64, in this order. */
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

type Symbols = ReturnType<typeof compile>;
let compiled: Symbols | undefined;

function compile() {
  // TinyCC reads its sources from the real filesystem, which a `bun build
  // --compile` binary does not have: write the embedded sources to a
  // private temporary directory first.
  const dir = mkdtempSync(join(tmpdir(), "jobber-launcher-"));
  try {
    for (const [name, source] of Object.entries(SOURCES)) {
      writeFileSync(join(dir, name), source, { mode: 0o600 });
    }
    const { symbols } = cc({
      source: join(dir, "launcher.c"),
      symbols: {
        jobber_launcher_start: { args: ["ptr", "i32"], returns: "i32" },
        jobber_launch: { args: ["i32", "ptr", "u32", "ptr", "i32", "ptr"], returns: "i32" },
        jobber_config_size: { args: [], returns: "i32" },
        jobber_reap: { args: ["i32", "i32"], returns: "i32" },
        jobber_signal: { args: ["i32", "i32"], returns: "i32" },
        jobber_pidfd_open: { args: ["i32"], returns: "i32" },
      },
    });
    // The two sides of the parameter block must agree, or every launch would misread it.
    const size = symbols.jobber_config_size();
    if (size !== CONFIG_SLOTS * 8) {
      throw new Error(`job.c's launch_config is ${size} bytes, launch.ts writes ${CONFIG_SLOTS * 8}`);
    }
    return symbols;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function symbols(): Symbols {
  compiled ??= compile();
  return compiled;
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
function parseOutcome(text: string): LaunchOutcome | undefined {
  const [word, step, errno] = text.trim().split(" ");
  if (word === "ok") return { ok: true };
  if (word === "failed" && step && Number.isInteger(Number(errno))) {
    return { ok: false, step, errno: Number(errno) };
  }
  return undefined;
}

/** The request body launcher.c decodes: the config block, then seven string groups. */
function encodeRequest(spec: LaunchSpec): Buffer {
  const values: Record<(typeof CONFIG_FIELDS)[number], number> = {
    cgroup_fd: -1,
    log_fd: -1,
    dir_fd: -1,
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
  const config = new BigInt64Array(CONFIG_SLOTS).fill(-1n);
  CONFIG_FIELDS.forEach((field, i) => {
    config[i] = BigInt(values[field]);
  });
  const groups = [
    spec.argv,
    spec.env,
    spec.maskedDirs,
    spec.maskedFiles,
    [spec.searchPath],
    [spec.cwd],
    [spec.hostname],
  ];
  const parts: Buffer[] = [Buffer.from(config.buffer)];
  for (const group of groups) {
    const count = Buffer.alloc(4);
    count.writeUInt32LE(group.length);
    parts.push(count, ...group.map((value) => Buffer.from(`${value}\0`)));
  }
  return Buffer.concat(parts);
}

/**
 * Reads init's line from the ready pipe, then waits for its end of file
 * (init has exited), without blocking the event loop. Closes the fd at the
 * end, or when released.
 */
function watchReadyPipe(fd: number): Pick<Launched, "outcome" | "exited" | "release"> {
  const reader = Bun.file(fd).stream().getReader();
  let released = false;
  let settleOutcome!: (outcome: LaunchOutcome | undefined) => void;
  const outcome = new Promise<LaunchOutcome | undefined>((resolve) => {
    settleOutcome = resolve;
  });
  const exited = (async () => {
    let text = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        // One short line is all init writes; anything longer is not from it.
        if (text.length < 256) text += Buffer.from(value).toString("latin1");
        if (text.includes("\n")) settleOutcome(parseOutcome(text));
      }
    } catch {
      // A read cut short (released): the job is not known to be over.
    } finally {
      settleOutcome(parseOutcome(text));
      closeSync(fd);
    }
    return !released;
  })();
  return {
    outcome,
    exited,
    release: () => {
      released = true;
      // The read loop ends once the cancel settles its pending read, and
      // closes the fd then: closed earlier, the number could be reused while
      // the stream still watches it.
      void reader.cancel().catch(() => {});
    },
  };
}

/** The errnos that mean the launcher process is gone, or did not answer in time (ETIMEDOUT). */
const LAUNCHER_GONE = new Set([
  constants.errno.EPIPE,
  constants.errno.ECONNRESET,
  constants.errno.ENOTCONN,
  constants.errno.ETIMEDOUT,
]);

/**
 * The launcher process (launcher.c): started on first use, shed of the
 * daemon's memory, cloning every job's init. Started again if it dies.
 */
export class Launcher {
  private process: { pid: number; pidfd: number; socket: number } | undefined;

  /** @param patienceMs how long to wait for the launcher to take a request or answer it before replacing it. */
  constructor(private readonly patienceMs = 10_000) {}

  /** The launcher's PID, once started. */
  get pid(): number | undefined {
    return this.process?.pid;
  }

  /**
   * Starts init in a new cgroup and namespaces; it forks and execs the
   * command. If the launcher turns out to be gone, a new one is started and
   * asked once more, after `beforeRetry` (which must make sure nothing the
   * old one may have started for this request lives on, or throw).
   */
  launch(spec: LaunchSpec, beforeRetry: () => void): Launched {
    if (spec.cgroupV1ProcsFds.length > MAX_V1_CONTROLLERS) throw new Error("too many cgroup v1 controllers");
    const body = encodeRequest(spec);
    const fds = Int32Array.from([spec.cgroupFd, spec.logFd, spec.jobDirFd, ...spec.cgroupV1ProcsFds]);
    const out = new Int32Array(3);
    let rc = symbols().jobber_launch(this.socket(), ptr(body), body.length, ptr(fds), fds.length, ptr(out));
    if (LAUNCHER_GONE.has(-rc)) {
      // Died since the last job, or during this request: a new one, and one more try.
      this.stop();
      beforeRetry();
      rc = symbols().jobber_launch(this.socket(), ptr(body), body.length, ptr(fds), fds.length, ptr(out));
    }
    if (rc < 0) throw new LaunchError("launch", -rc);
    return { pid: out[0] as number, pidfd: out[1] as number, ...watchReadyPipe(out[2] as number) };
  }

  /** Compiles the launcher and starts its process now rather than at the first job (and fails now if it cannot). */
  start(): void {
    this.socket();
  }

  /** Ends the launcher process. Running jobs are not its children any more than they are jobberd's: they keep running. */
  stop(): void {
    const process = this.process;
    if (!process) return;
    this.process = undefined;
    closeSync(process.socket);
    symbols().jobber_signal(process.pidfd, constants.signals.SIGKILL);
    symbols().jobber_reap(process.pidfd, 1);
    closeSync(process.pidfd);
  }

  private socket(): number {
    if (!this.process) {
      const out = new Int32Array(3);
      const rc = symbols().jobber_launcher_start(ptr(out), this.patienceMs);
      if (rc < 0) throw new LaunchError("starting the launcher", -rc);
      this.process = { pid: out[0] as number, pidfd: out[1] as number, socket: out[2] as number };
    }
    return this.process.socket;
  }
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
