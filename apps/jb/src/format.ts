// Jobs as people and scripts read them: the original jb's table, one JSON document,
// status words, local times, and the exit code `jb start -f` passes on.
import { constants } from "node:os";
import { type Job, JobStatus } from "@jobber/proto";
import { renderTable } from "./table";

/** Longer commands are shortened in tables (ending in "…"); JSON has them whole. */
export const MAX_COMMAND_WIDTH = 60;

const STATUS_WORDS: Record<JobStatus, string> = {
  [JobStatus.UNSPECIFIED]: "unknown",
  [JobStatus.RUNNING]: "running",
  [JobStatus.EXITED]: "exited",
  [JobStatus.STOPPED]: "stopped",
  [JobStatus.KILLED]: "killed",
  [JobStatus.OOM_KILLED]: "oom_killed",
  [JobStatus.FAILED]: "failed",
  [JobStatus.TIMED_OUT]: "timed_out",
};

/** The status as a lowercase word for scripts: running, exited, stopped, killed, oom_killed, failed, timed_out. */
export function statusWord(job: Job): string {
  return STATUS_WORDS[job.status] ?? "unknown";
}

/** The status for the table: Running, Exited (3), Stopped, Killed (SIGKILL), OOM killed, Failed. */
export function statusText(job: Job): string {
  switch (job.status) {
    case JobStatus.RUNNING:
      return "Running";
    case JobStatus.EXITED:
      return `Exited (${job.exitCode})`;
    case JobStatus.STOPPED:
      return "Stopped";
    case JobStatus.KILLED:
      return job.signal ? `Killed (${job.signal})` : "Killed";
    case JobStatus.OOM_KILLED:
      return "OOM killed";
    case JobStatus.FAILED:
      return "Failed";
    case JobStatus.TIMED_OUT:
      return "Timed out";
    default:
      return "Unknown";
  }
}

const pad2 = (n: number) => String(n).padStart(2, "0");

/** An RFC 3339 time as local time, e.g. 2026-11-28 22:59:03; "-" when absent. */
export function localTime(rfc3339: string): string {
  const date = new Date(rfc3339);
  if (rfc3339 === "" || Number.isNaN(date.getTime())) return "-";
  const day = `${date.getFullYear()}-${pad2(date.getMonth() + 1)}-${pad2(date.getDate())}`;
  return `${day} ${pad2(date.getHours())}:${pad2(date.getMinutes())}:${pad2(date.getSeconds())}`;
}

function shorten(command: string): string {
  const chars = [...command];
  return chars.length <= MAX_COMMAND_WIDTH ? command : `${chars.slice(0, MAX_COMMAND_WIDTH - 1).join("")}…`;
}

/** The status cell: the status, and that output was dropped at the log's cap. */
function statusCell(job: Job): string {
  return job.logTruncated ? `${statusText(job)}, log truncated` : statusText(job);
}

/** "Job started:" and the original jb's table of jobs. */
export function jobTable(heading: string, jobs: readonly Job[]): string {
  const rows = jobs.map((job) => [
    String(job.id),
    shorten(job.command),
    localTime(job.createdAt),
    statusCell(job),
  ]);
  return `${heading}\n${renderTable(["ID", "Command", "Created", "Status"], rows)}`;
}

/** The JSON shape of a job: ids and sizes as numbers, absent values as null. */
export interface JobJson {
  id: number;
  command: string;
  args: string[];
  status: string;
  finished: boolean;
  /** Set when the command exited by itself (also when it exited on a stop's SIGTERM). */
  exit_code: number | null;
  /** e.g. "SIGKILL", when a signal ended it. */
  signal: string | null;
  created_at: string;
  finished_at: string | null;
  failure_reason: string | null;
  /** Output was dropped because the log reached limits.log_bytes. */
  log_truncated: boolean;
  limits: {
    cpus: number;
    memory_bytes: number;
    io_read_bps: number;
    io_write_bps: number;
    pids_max: number;
    log_bytes: number;
    /** 0: none. */
    timeout_seconds: number;
  } | null;
}

export function jobJson(job: Job): JobJson {
  const exited = job.status === JobStatus.EXITED || (job.status === JobStatus.STOPPED && job.signal === "");
  return {
    id: Number(job.id),
    command: job.command,
    args: job.args,
    status: statusWord(job),
    finished: job.finished,
    exit_code: exited ? job.exitCode : null,
    signal: job.signal === "" ? null : job.signal,
    created_at: job.createdAt,
    finished_at: job.finishedAt === "" ? null : job.finishedAt,
    failure_reason: job.failureReason === "" ? null : job.failureReason,
    log_truncated: job.logTruncated,
    limits: job.limits
      ? {
          cpus: job.limits.cpus,
          memory_bytes: Number(job.limits.memoryBytes),
          io_read_bps: Number(job.limits.ioReadBps),
          io_write_bps: Number(job.limits.ioWriteBps),
          pids_max: Number(job.limits.pidsMax),
          log_bytes: Number(job.limits.logBytes),
          timeout_seconds: job.limits.timeoutSeconds,
        }
      : null,
  };
}

/** One JSON document, pretty-printed, ending in a newline. */
export function toJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** `timeout(1)`'s exit status for a command it had to stop. */
export const TIMED_OUT_EXIT = 124;
/** A shell's (and `docker run`'s) exit status for a program that could not be executed. */
export const CANNOT_EXECUTE_EXIT = 126;

/**
 * The exit code of `jb start -f`, as a shell reports a child's: the job's
 * own code, 128 + the signal's number when a signal ended it (137 for
 * SIGKILL, so also for an OOM kill), 124 when its timeout stopped it (as
 * `timeout` exits), 126 when it could not be executed.
 */
export function exitCodeOf(job: Job): number {
  if (job.status === JobStatus.TIMED_OUT) return TIMED_OUT_EXIT;
  if (job.status === JobStatus.FAILED) return CANNOT_EXECUTE_EXIT;
  if (job.signal !== "") {
    const number = (constants.signals as Record<string, number | undefined>)[job.signal];
    return number === undefined ? 1 : 128 + number;
  }
  switch (job.status) {
    case JobStatus.EXITED:
    case JobStatus.STOPPED:
      return job.exitCode;
    case JobStatus.OOM_KILLED:
      return 128 + constants.signals.SIGKILL;
    default:
      return 1;
  }
}

/** A line for stderr when a job's output was cut at its log's cap; undefined when it was not. */
export function truncationNote(job: Job): string | undefined {
  if (!job.logTruncated) return undefined;
  const cap = job.limits?.logBytes ? ` (${describeSize(Number(job.limits.logBytes))})` : "";
  return `job ${job.id}'s log reached its cap${cap}: output past it was dropped (jb start --log raises it)`;
}

function describeSize(bytes: number): string {
  for (const [unit, size] of [
    ["GiB", 1024 ** 3],
    ["MiB", 1024 ** 2],
    ["KiB", 1024],
  ] as const) {
    if (bytes >= size) return `${Number((bytes / size).toFixed(1))} ${unit}`;
  }
  return `${bytes} bytes`;
}

/** A line for stderr when a followed job did not simply exit; undefined when it did. */
export function endingNote(job: Job): string | undefined {
  const limit = job.limits?.memoryBytes ? ` (${Number(job.limits.memoryBytes) / 1024 ** 2} MiB)` : "";
  switch (job.status) {
    case JobStatus.EXITED:
      return undefined;
    case JobStatus.STOPPED:
      return `job ${job.id} was stopped`;
    case JobStatus.KILLED:
      return `job ${job.id} was killed${job.signal ? ` by ${job.signal}` : ""}`;
    case JobStatus.OOM_KILLED:
      return `job ${job.id} was killed by the OOM killer at its memory limit${limit}`;
    case JobStatus.FAILED:
      return `job ${job.id} failed to start: ${job.failureReason || "its command could not be executed"}`;
    case JobStatus.TIMED_OUT:
      return `job ${job.id} was stopped at its timeout (${job.limits?.timeoutSeconds ?? "?"} s)`;
    default:
      return `job ${job.id}'s output ended while it is ${statusWord(job)}`;
  }
}
