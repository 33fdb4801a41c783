// The state directory's filesystem is shared by every tenant's logs: new
// jobs are refused while it is nearly full, so that the jobs already running
// (and the daemon's own bookkeeping) keep room to finish.
import { statfsSync } from "node:fs";
import { JobberError } from "./errors";
import { formatBytes } from "./format-bytes";

/** What to keep free: a share of the filesystem (0.05 = 5 %) or a number of bytes; 0 keeps nothing. */
export type MinFree = { fraction: number } | { bytes: number };

export interface FreeSpace {
  freeBytes: number;
  totalBytes: number;
}

/** Free space as df reports it: what an unprivileged writer may still use. */
function freeSpace(dir: string): FreeSpace {
  const stats = statfsSync(dir);
  return { freeBytes: stats.bavail * stats.bsize, totalBytes: stats.blocks * stats.bsize };
}

function describeMinimum(minFree: MinFree): string {
  return "fraction" in minFree
    ? `${Number((minFree.fraction * 100).toFixed(2))}%`
    : formatBytes(minFree.bytes);
}

/** Throws RESOURCE_EXHAUSTED while `dir`'s filesystem has less free than `minFree`. */
export function checkFreeSpace(dir: string, minFree: MinFree): void {
  const { freeBytes, totalBytes } = freeSpace(dir);
  const needed = "fraction" in minFree ? minFree.fraction * totalBytes : minFree.bytes;
  if (freeBytes >= needed) return;
  const share = totalBytes > 0 ? ` (${((freeBytes / totalBytes) * 100).toFixed(1)}%)` : "";
  throw new JobberError(
    "RESOURCE_EXHAUSTED",
    `the state directory's filesystem has ${formatBytes(freeBytes)} free${share}, under min-free = ${describeMinimum(minFree)}: no new jobs until finished jobs are removed (jb rm)`,
  );
}
