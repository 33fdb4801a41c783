// `-f`: the job's bytes to stdout as they arrive, until the job ends; Ctrl+C
// detaches (cancels the stream, the job keeps running). A follow outlives a
// jobberd restart: the job's log is on disk and the offset is known, so jb
// reconnects and asks for the rest, without losing or repeating a byte.
import type { JobClient } from "@jobber/proto";
import { StdoutClosedError, writeStdout } from "./output";
import { isRetryable, type RetryPolicy, STANDARD_RETRY, sleep } from "./retry";

/**
 * How following ended: the job ended and all its output was written (or, with
 * `until`, that many bytes were); the user pressed Ctrl+C; or stdout's reader
 * went away (`jb log -f 3 | head`).
 */
export type FollowEnd = "ended" | "detached" | "stdout-closed";

export interface FollowOptions {
  /** Stop once the output reaches this many bytes (a snapshot too big for one message). */
  until?: bigint;
  write?: (chunk: Uint8Array) => Promise<void>;
  retry?: RetryPolicy;
  /** Told once when the stream broke and jb starts asking again (not at every attempt). */
  onReconnect?: (offset: bigint, cause: unknown) => void;
}

/** The connection could not be had back: the last error, and where the output stopped. */
export class FollowLostError extends Error {
  override readonly name = "FollowLostError";
  constructor(
    readonly offset: bigint,
    override readonly cause: unknown,
  ) {
    super(`lost jobberd at byte ${offset}`);
  }
}

export async function followToStdout(
  client: JobClient,
  jobId: bigint,
  { until, write = writeStdout, retry = STANDARD_RETRY, onReconnect }: FollowOptions = {},
): Promise<FollowEnd> {
  const detach = new AbortController();
  const onInterrupt = () => {
    // A second Ctrl+C while the cancel is under way: stop waiting for it.
    if (detach.signal.aborted) process.exit(130);
    detach.abort(new Error("detached"));
  };
  process.on("SIGINT", onInterrupt);
  // Bytes written to stdout so far: where a new stream must start.
  let offset = 0n;
  let failures = 0;
  try {
    for (;;) {
      try {
        for await (const chunk of client.followJobLog({ jobId, offset }, { signal: detach.signal })) {
          const wanted = until === undefined ? chunk : chunk.subarray(0, Number(until - offset));
          await write(wanted);
          offset += BigInt(wanted.length);
          failures = 0;
          if (until !== undefined && offset >= until) return "ended";
        }
        return "ended";
      } catch (error) {
        if (detach.signal.aborted) return "detached";
        if (error instanceof StdoutClosedError) return "stdout-closed";
        if (!isRetryable(error)) throw error;
        const delay = retry.delaysMs[failures++];
        if (delay === undefined) throw new FollowLostError(offset, error);
        if (failures === 1) onReconnect?.(offset, error);
        await sleep(delay, detach.signal);
        if (detach.signal.aborted) return "detached";
      }
    }
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
