import { lstatSync, mkdirSync } from "node:fs";
import { errnoCode, JobberError } from "./errors";

/**
 * Makes sure `path` is a directory only its owner (this process's user) can
 * change: created 0700 when missing; refused when it is a symlink, owned by
 * someone else, or writable by group or others — any of which would let
 * another user swap job files under the daemon.
 */
export function ensurePrivateDir(path: string, what: string): void {
  let stat: ReturnType<typeof lstatSync>;
  try {
    stat = lstatSync(path);
  } catch (error) {
    if (errnoCode(error) !== "ENOENT") throw error;
    mkdirSync(path, { recursive: true, mode: 0o700 });
    stat = lstatSync(path);
  }
  const uid = process.getuid?.() ?? 0;
  if (stat.isSymbolicLink())
    throw new JobberError(
      "FAILED_PRECONDITION",
      `${what} ${path} is a symbolic link; use the real directory instead`,
    );
  if (!stat.isDirectory()) throw new JobberError("FAILED_PRECONDITION", `${what} ${path} is not a directory`);
  if (stat.uid !== uid) {
    throw new JobberError(
      "FAILED_PRECONDITION",
      `${what} ${path} is owned by uid ${stat.uid}, not by uid ${uid}`,
    );
  }
  if ((stat.mode & 0o022) !== 0) {
    const mode = (stat.mode & 0o777).toString(8);
    throw new JobberError(
      "FAILED_PRECONDITION",
      `${what} ${path} is writable by group or others (mode ${mode}); chmod 700 it`,
    );
  }
}
