// `-f`: the job's bytes to stdout as they arrive, until the job ends; Ctrl+C
// detaches (cancels the stream, the job keeps running).
import type { JobClient } from "@jobber/proto";
import { StdoutClosedError, writeStdout } from "./output";

/**
 * How following ended: the job ended and all its output was written; the user
 * pressed Ctrl+C; or stdout's reader went away (`jb log -f 3 | head`).
 */
export type FollowEnd = "ended" | "detached" | "stdout-closed";

export async function followToStdout(
  client: JobClient,
  jobId: bigint,
  write: (chunk: Uint8Array) => Promise<void> = writeStdout,
): Promise<FollowEnd> {
  const detach = new AbortController();
  const onInterrupt = () => {
    // A second Ctrl+C while the cancel is under way: stop waiting for it.
    if (detach.signal.aborted) process.exit(130);
    detach.abort(new Error("detached"));
  };
  process.on("SIGINT", onInterrupt);
  try {
    for await (const chunk of client.followJobLog({ jobId, offset: 0n }, { signal: detach.signal })) {
      await write(chunk);
    }
    return "ended";
  } catch (error) {
    if (detach.signal.aborted) return "detached";
    if (error instanceof StdoutClosedError) return "stdout-closed";
    throw error;
  } finally {
    process.off("SIGINT", onInterrupt);
  }
}

/** What to tell the user on stderr after Ctrl+C. */
export function detachHint(jobId: bigint): string {
  return `detached; job ${jobId} keeps running — jb log -f ${jobId} to follow again, jb stop ${jobId} to stop it`;
}

/** Exit status after Ctrl+C (128 + SIGINT), as a shell reports it. */
export const DETACHED_EXIT = 130;
/** Exit status when stdout's reader went away (128 + SIGPIPE), as `cat` would end. */
export const STDOUT_CLOSED_EXIT = 141;
