// When to ask jobberd again: only when it could not be reached (it is
// restarting, or the connection broke), a bounded number of times, waiting a
// little longer each time.
import { Status } from "@jobber/proto";

export interface RetryPolicy {
  /** The wait before each new attempt; when they run out, the last error stands. */
  delaysMs: readonly number[];
}

/** About 30 s in all: enough for a daemon to restart, not enough to hang a script. */
export const STANDARD_RETRY: RetryPolicy = {
  delaysMs: [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000, 5000],
};

export function totalSeconds(policy: RetryPolicy): number {
  return Math.round(policy.delaysMs.reduce((sum, ms) => sum + ms, 0) / 1000);
}

export function isRetryable(error: unknown): boolean {
  return (
    typeof error === "object" && error !== null && (error as { code?: unknown }).code === Status.UNAVAILABLE
  );
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Runs `call` again while jobberd is unreachable, within the policy. */
export async function withRetry<T>(call: () => Promise<T>, policy: RetryPolicy = STANDARD_RETRY): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      const delay = policy.delaysMs[attempt];
      if (!isRetryable(error) || delay === undefined) throw error;
      await sleep(delay);
    }
  }
}
