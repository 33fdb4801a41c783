// What a finished job's status is, from what init recorded and what the
// cgroup saw.
import { constants } from "node:os";

export type JobState = "running" | "exited" | "stopped" | "killed" | "oom_killed" | "failed" | "timed_out";

export interface JobStatus {
  state: JobState;
  /** The command's exit code, when it exited by itself. */
  exitCode?: number;
  /** Signal name (e.g. "SIGKILL") when the command was ended by a signal. */
  signal?: string;
  /** RFC 3339, once finished. */
  finishedAt?: string;
  /** Why the job failed to start, in words. */
  reason?: string;
}

/** What init wrote to `<job>/exit`, parsed. */
export type ExitRecord =
  | { kind: "exited"; code: number }
  | { kind: "signaled"; signal: number }
  | { kind: "failed"; errno: number; stage: string };

/** "exited <code>", "signaled <signal>" or "failed <step> <errno>". */
export function parseExitRecord(text: string | undefined): ExitRecord | undefined {
  const [kind, first, second] = (text ?? "").trim().split(" ");
  if (kind === "failed") {
    const errno = Number(second);
    return first && Number.isInteger(errno) ? { kind, errno, stage: first } : undefined;
  }
  const value = Number(first);
  if (!Number.isInteger(value)) return undefined;
  if (kind === "exited") return { kind, code: value };
  if (kind === "signaled") return { kind, signal: value };
  return undefined;
}

function signalName(signal: number): string {
  const entry = Object.entries(constants.signals).find(([, number]) => number === signal);
  return entry ? entry[0] : `signal ${signal}`;
}

function errnoName(errno: number): string {
  const entry = Object.entries(constants.errno).find(([, number]) => number === errno);
  return entry ? entry[0] : `errno ${errno}`;
}

const SIGKILL = constants.signals.SIGKILL;

export interface Ending {
  exit: ExitRecord | undefined;
  stopRequested: boolean;
  /** Its timeout stopped it (and no user had asked to stop it before). */
  timedOut?: boolean;
  oomKills: number;
  finishedAt: string;
}

/**
 * Decides a finished job's status. A job with no exit record lost its init
 * to SIGKILL: the cgroup was killed (stop after the grace period) or the OOM
 * killer chose init itself.
 */
export function decideStatus({ exit, stopRequested, timedOut, oomKills, finishedAt }: Ending): JobStatus {
  if (exit?.kind === "failed") {
    return { state: "failed", finishedAt, reason: `${exit.stage} failed: ${errnoName(exit.errno)}` };
  }
  const killedBy = exit === undefined ? SIGKILL : exit.kind === "signaled" ? exit.signal : undefined;
  const signal = killedBy === undefined ? {} : { signal: signalName(killedBy) };
  const exitCode = exit?.kind === "exited" ? { exitCode: exit.code } : {};
  if (stopRequested) return { state: "stopped", finishedAt, ...exitCode, ...signal };
  if (timedOut) return { state: "timed_out", finishedAt, ...exitCode, ...signal };
  // An OOM kill that the command survived (a child died, it carried on) is
  // not the job's end; one that took the command or init is.
  const diedOfKill = killedBy === SIGKILL || (exit?.kind === "exited" && exit.code === 128 + SIGKILL);
  if (oomKills > 0 && diedOfKill) return { state: "oom_killed", finishedAt, ...exitCode, signal: "SIGKILL" };
  if (exit?.kind === "exited") return { state: "exited", finishedAt, exitCode: exit.code };
  return { state: "killed", finishedAt, ...signal };
}
