// Finished jobs do not stay forever: past the retention their directory and
// log are removed, so the state directory stops growing with history.
import { errnoCode } from "./errors";
import type { JobStore } from "./store";

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

/** How often to look for expired jobs: at least hourly, never more than once a minute. */
export function retentionPeriodMs(retentionMs: number): number {
  return Math.min(HOUR_MS, Math.max(MINUTE_MS, retentionMs));
}

export interface RetentionPass {
  removed: { tenant: string; id: number }[];
  /** What could not be removed, in words. */
  failures: string[];
}

/** Removes every finished job that ended more than `retentionMs` before `now`. Running jobs are never touched. */
export function removeExpiredJobs(
  store: JobStore,
  isRunning: (id: number) => boolean,
  retentionMs: number,
  now = Date.now(),
): RetentionPass {
  const pass: RetentionPass = { removed: [], failures: [] };
  for (const tenant of store.tenants()) {
    for (const id of store.ids(tenant)) {
      if (isRunning(id)) continue;
      try {
        const status = store.readFinalStatus(tenant, id);
        // No final status: running, or being started.
        if (!status || status.state === "running") continue;
        const ended = Date.parse(status.finishedAt ?? "");
        if (!Number.isFinite(ended) || now - ended <= retentionMs) continue;
        store.remove(tenant, id);
        pass.removed.push({ tenant, id });
      } catch (error) {
        // Removed meanwhile (RemoveJob): nothing left to do.
        if (errnoCode(error) !== "ENOENT") pass.failures.push(`job ${id}: ${error}`);
      }
    }
  }
  return pass;
}
