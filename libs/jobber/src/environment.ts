// A job's environment and working directory: what a client may ask for, and
// what the job gets. The defaults are the minimal ones a command needs
// (PATH, HOME); the client's variables replace them, and JOBBER_JOB_ID is
// always the job's own id.
import { isAbsolute, normalize } from "node:path";
import { JobberError } from "./errors";
import { JOB_PATH } from "./resolve";

/** Bounds below the kernel's: execve takes argv and envp together up to a quarter of the stack limit. */
const MAX_ENV_ENTRIES = 1024;
const MAX_ENV_BYTES = 128 * 1024;
/** PATH_MAX, terminator included. */
const MAX_WORKDIR_BYTES = 4095;

export interface JobEnvironment {
  /** KEY=VALUE entries as the client gave them. */
  env?: string[];
  /** Absolute path inside the job's view; "/" when absent. */
  workdir?: string;
}

/** Rejects entries execve would refuse or misread; returns them as given. */
export function checkEnvironment(env: readonly string[]): string[] {
  if (env.length > MAX_ENV_ENTRIES) {
    throw new JobberError(
      "INVALID_ARGUMENT",
      `too many environment variables: ${env.length} (at most ${MAX_ENV_ENTRIES})`,
    );
  }
  let bytes = 0;
  for (const entry of env) {
    const equals = entry.indexOf("=");
    if (equals <= 0) {
      throw new JobberError(
        "INVALID_ARGUMENT",
        `environment entry ${JSON.stringify(entry.slice(0, 64))} is not KEY=VALUE with a non-empty KEY`,
      );
    }
    if (entry.includes("\0")) {
      throw new JobberError(
        "INVALID_ARGUMENT",
        `environment variable ${entry.slice(0, equals)} contains a NUL byte`,
      );
    }
    bytes += Buffer.byteLength(entry) + 1;
  }
  if (bytes > MAX_ENV_BYTES) {
    throw new JobberError("INVALID_ARGUMENT", `the environment is ${bytes} bytes (at most ${MAX_ENV_BYTES})`);
  }
  return [...env];
}

/** An absolute path with no NUL; `.` and `..` folded so the record says where the job runs. */
export function checkWorkdir(workdir: string): string {
  if (workdir.includes("\0")) throw new JobberError("INVALID_ARGUMENT", "workdir contains a NUL byte");
  if (!isAbsolute(workdir)) {
    throw new JobberError(
      "INVALID_ARGUMENT",
      `workdir ${JSON.stringify(workdir)} is not an absolute path (it is a path inside the job's view, e.g. /srv/app)`,
    );
  }
  if (Buffer.byteLength(workdir) > MAX_WORKDIR_BYTES) {
    throw new JobberError("INVALID_ARGUMENT", `workdir is longer than ${MAX_WORKDIR_BYTES} bytes`);
  }
  return normalize(workdir);
}

/** The environment the job's command gets: defaults, then the client's entries (last one wins), then its id. */
export function jobEnvironment(requested: readonly string[], jobId: number): string[] {
  const byKey = new Map<string, string>();
  for (const entry of [`PATH=${JOB_PATH}`, "HOME=/", ...requested, `JOBBER_JOB_ID=${jobId}`]) {
    byKey.set(entry.slice(0, entry.indexOf("=")), entry);
  }
  return [...byKey.values()];
}

/** The PATH a program name is looked up on: the job's own, as execvp in the job would. */
export function searchPathOf(requested: readonly string[]): string {
  const entry = [...requested].reverse().find((candidate) => candidate.startsWith("PATH="));
  return entry === undefined ? JOB_PATH : entry.slice("PATH=".length);
}
