import { JobError } from "./errors";

/** Resource limits of a job. Zero or absent means the daemon's default; a default of 0 means unlimited. */
export interface Limits {
  /** CPU time in cores, e.g. 0.5. */
  cpus?: number;
  /** Memory in bytes; the job gets no swap. */
  memoryBytes?: number;
  /** Disk read and write throughput in bytes per second. */
  ioReadBps?: number;
  ioWriteBps?: number;
  /** Maximum number of processes and threads. */
  pidsMax?: number;
  /** The most bytes the job's log may hold; output past it is dropped. */
  logBytes?: number;
  /** Wall-clock limit in seconds; past it the job is stopped. 0 means none. */
  timeoutSeconds?: number;
}

/** Limits with every field decided: 0 means unlimited. */
export type ResolvedLimits = Required<Limits>;

export const DEFAULT_LIMITS: ResolvedLimits = {
  cpus: 1,
  memoryBytes: 1024 * 1024 * 1024,
  ioReadBps: 0,
  ioWriteBps: 0,
  pidsMax: 1024,
  logBytes: 256 * 1024 * 1024,
  timeoutSeconds: 0,
};

const MIN_MEMORY_BYTES = 1024 * 1024;
const MIN_CPUS = 0.01;
const MAX_CPUS = 1024;

function checkField(name: string, value: number, integer: boolean): void {
  if (!Number.isFinite(value) || value < 0 || (integer && !Number.isSafeInteger(value))) {
    throw new JobError(
      "INVALID_ARGUMENT",
      `limit ${name} must be a ${integer ? "whole " : ""}number ≥ 0 (0 = default), got ${value}`,
    );
  }
}

/** Validates a client's limits and fills in the defaults. */
export function resolveLimits(requested: Limits, defaults: ResolvedLimits = DEFAULT_LIMITS): ResolvedLimits {
  const pick = (name: keyof Limits, integer: boolean): number => {
    const value = requested[name] ?? 0;
    checkField(name, value, integer);
    return value === 0 ? defaults[name] : value;
  };
  const limits: ResolvedLimits = {
    cpus: pick("cpus", false),
    memoryBytes: pick("memoryBytes", true),
    ioReadBps: pick("ioReadBps", true),
    ioWriteBps: pick("ioWriteBps", true),
    pidsMax: pick("pidsMax", true),
    logBytes: pick("logBytes", true),
    timeoutSeconds: pick("timeoutSeconds", false),
  };
  if (limits.cpus !== 0 && (limits.cpus < MIN_CPUS || limits.cpus > MAX_CPUS)) {
    throw new JobError("INVALID_ARGUMENT", `limit cpus must be between ${MIN_CPUS} and ${MAX_CPUS} cores`);
  }
  if (limits.memoryBytes !== 0 && limits.memoryBytes < MIN_MEMORY_BYTES) {
    throw new JobError("INVALID_ARGUMENT", "limit memoryBytes must be at least 1 MiB");
  }
  return limits;
}
