import { JobberError } from "./errors";

/** The PATH jobs get and commands are resolved on (by the launcher, in the job's view). */
export const JOB_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Bounds below the kernel's own (MAX_ARG_STRLEN 128 KiB, ARG_MAX a quarter of the stack). */
const MAX_ARGS = 4096;
const MAX_ARGV_BYTES = 128 * 1024;

/** Rejects an argv that execve could never take, with a message saying why. */
export function checkArgv(argv: readonly string[]): void {
  if (argv.length === 0 || argv[0] === "") throw new JobberError("INVALID_ARGUMENT", "the command is empty");
  if (argv.length > MAX_ARGS) {
    throw new JobberError("INVALID_ARGUMENT", `too many arguments: ${argv.length} (at most ${MAX_ARGS})`);
  }
  let bytes = 0;
  for (const arg of argv) {
    if (arg.includes("\0")) throw new JobberError("INVALID_ARGUMENT", "arguments cannot contain NUL bytes");
    bytes += Buffer.byteLength(arg) + 1;
  }
  if (bytes > MAX_ARGV_BYTES) {
    throw new JobberError(
      "INVALID_ARGUMENT",
      `the command line is ${bytes} bytes (at most ${MAX_ARGV_BYTES})`,
    );
  }
}
