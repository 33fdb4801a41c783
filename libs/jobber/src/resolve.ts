import { statSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { JobError } from "./errors";

/** The PATH jobs get and commands are resolved on. */
export const JOB_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Bounds below the kernel's own (MAX_ARG_STRLEN 128 KiB, ARG_MAX a quarter of the stack). */
export const MAX_ARGS = 4096;
export const MAX_ARGV_BYTES = 128 * 1024;

/** Rejects an argv that execve could never take, with a message saying why. */
export function checkArgv(argv: readonly string[]): void {
  if (argv.length === 0 || argv[0] === "") throw new JobError("INVALID_ARGUMENT", "the command is empty");
  if (argv.length > MAX_ARGS) {
    throw new JobError("INVALID_ARGUMENT", `too many arguments: ${argv.length} (at most ${MAX_ARGS})`);
  }
  let bytes = 0;
  for (const arg of argv) {
    if (arg.includes("\0")) throw new JobError("INVALID_ARGUMENT", "arguments cannot contain NUL bytes");
    bytes += Buffer.byteLength(arg) + 1;
  }
  if (bytes > MAX_ARGV_BYTES) {
    throw new JobError("INVALID_ARGUMENT", `the command line is ${bytes} bytes (at most ${MAX_ARGV_BYTES})`);
  }
}

/** The user a job runs as; its supplementary groups are dropped before exec. */
export interface RunAs {
  uid: number;
  gid: number;
}

/** Whether `user` may execute the file, by its mode bits as execve would judge them. */
function executableFile(path: string, user: RunAs): "ok" | "missing" | "not-executable" {
  try {
    const stat = statSync(path);
    if (!stat.isFile()) return "not-executable";
    const bit =
      user.uid === 0 ? 0o111 : stat.uid === user.uid ? 0o100 : stat.gid === user.gid ? 0o010 : 0o001;
    return (stat.mode & bit) !== 0 ? "ok" : "not-executable";
  } catch {
    return "missing";
  }
}

/**
 * Resolves a program name the way execvp would for the job's user, before
 * launch, so that a missing or forbidden command is an error of the start
 * call rather than a job that dies. Paths with a slash are taken relative to
 * the job's working directory.
 */
export function resolveProgram(
  program: string,
  user: RunAs,
  searchPath: string = JOB_PATH,
  workdir = "/",
): string {
  const notExecutable = (path: string) =>
    new JobError("INVALID_ARGUMENT", `not an executable file for the job's user (uid ${user.uid}): ${path}`, {
      reason: "NOT_EXECUTABLE",
    });
  const notFound = (message: string) =>
    new JobError("INVALID_ARGUMENT", message, { reason: "COMMAND_NOT_FOUND" });
  if (program.includes("/")) {
    const path = isAbsolute(program) ? program : resolve(workdir, program);
    const state = executableFile(path, user);
    if (state === "missing") throw notFound(`command not found: ${program}`);
    if (state === "not-executable") throw notExecutable(program);
    return path;
  }
  let forbidden: string | undefined;
  for (const dir of searchPath.split(":")) {
    if (!dir) continue;
    const candidate = join(dir, program);
    const state = executableFile(candidate, user);
    if (state === "ok") return candidate;
    if (state === "not-executable") forbidden ??= candidate;
  }
  if (forbidden) throw notExecutable(forbidden);
  throw notFound(`command not found: ${program} (searched ${searchPath})`);
}
