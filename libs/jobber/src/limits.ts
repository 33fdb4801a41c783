// What one job may use: the client's request, the daemon's defaults for what
// it leaves out, and the most any one job may ask for.
import { readFileSync } from "node:fs";
import { availableParallelism, totalmem } from "node:os";
import { JobberError } from "./errors";
import { formatBytes } from "./format-bytes";

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

/** The limits that have a ceiling per job. */
export type CappedLimit = "cpus" | "memoryBytes" | "pidsMax" | "logBytes";

/** The most one job may ask for; 0 means no ceiling. */
export type MaxLimits = Record<CappedLimit, number>;

/** Defaults and ceilings: the daemon's policy for one job's limits. */
export interface LimitPolicy {
  defaults: ResolvedLimits;
  maximums: MaxLimits;
}

export const DEFAULT_LIMITS: ResolvedLimits = {
  cpus: 1,
  memoryBytes: 1024 * 1024 * 1024,
  ioReadBps: 0,
  ioWriteBps: 0,
  pidsMax: 1024,
  logBytes: 256 * 1024 * 1024,
  timeoutSeconds: 0,
};

/** Most PIDs one job may ask for without a --max-pids. */
const DEFAULT_MAX_PIDS = 32768;
const DEFAULT_MAX_LOG_BYTES = 4 * 1024 * 1024 * 1024;

/** The host's own size: what one job may at most ask for unless configured otherwise. */
function hostMaxLimits(): MaxLimits {
  return {
    cpus: availableParallelism(),
    memoryBytes: totalmem(),
    pidsMax: DEFAULT_MAX_PIDS,
    logBytes: DEFAULT_MAX_LOG_BYTES,
  };
}

/** The policy with what is not configured taken from DEFAULT_LIMITS and the host; a default over its maximum is refused. */
export function limitPolicy(
  defaults: Partial<ResolvedLimits> = {},
  maximums: Partial<MaxLimits> = {},
): LimitPolicy {
  const policyDefaults = { ...DEFAULT_LIMITS, ...defined(defaults) };
  // A ceiling taken from the host never refuses the default (a host with less than 1 GiB of memory).
  const host = hostMaxLimits();
  for (const name of Object.keys(host) as CappedLimit[])
    host[name] = Math.max(host[name], policyDefaults[name]);
  const policy = { defaults: policyDefaults, maximums: { ...host, ...defined(maximums) } };
  for (const name of Object.keys(policy.maximums) as CappedLimit[]) {
    const [value, maximum] = [policy.defaults[name], policy.maximums[name]];
    // An unlimited default under a ceiling would let every job past it.
    if (maximum > 0 && (value > maximum || value === 0)) {
      throw new JobberError(
        "INVALID_ARGUMENT",
        `the default ${LIMIT_WORDS[name]} (${describe(name, value)}) is over its per-job maximum, ${MAXIMUM_NAMES[name]} = ${describe(name, maximum)}`,
      );
    }
  }
  return policy;
}

/** The policy of a Jobber opened without one. */
const DEFAULT_POLICY: LimitPolicy = { defaults: DEFAULT_LIMITS, maximums: hostMaxLimits() };

/** What one tenant's running jobs may hold together; 0 means no ceiling. */
export interface TenantQuotas {
  /** Running jobs. */
  jobs: number;
  /** Their CPU time together, in cores. */
  cpus: number;
  /** Their memory together, in bytes. */
  memoryBytes: number;
  /** Their processes and threads together. */
  pidsMax: number;
}

/** A quarter of the host's PIDs: four tenants at their ceiling still leave the host room. */
function quarterOfPidMax(): number {
  try {
    return Math.floor(Number(readFileSync("/proc/sys/kernel/pid_max", "utf8")) / 4) || 8192;
  } catch {
    return 8192;
  }
}

/** Tenant quotas with what is not configured taken from the host. */
export function tenantQuotas(configured: Partial<TenantQuotas> = {}): TenantQuotas {
  return {
    jobs: 100,
    cpus: availableParallelism(),
    memoryBytes: totalmem(),
    pidsMax: quarterOfPidMax(),
    ...defined(configured),
  };
}

const MIN_MEMORY_BYTES = 1024 * 1024;
const MIN_CPUS = 0.01;
const MAX_CPUS = 1024;

/** The configuration names of the ceilings (jobberd's flags). */
const MAXIMUM_NAMES: Record<CappedLimit, string> = {
  cpus: "max-cpus",
  memoryBytes: "max-memory",
  pidsMax: "max-pids",
  logBytes: "max-log",
};

const LIMIT_WORDS: Record<CappedLimit, string> = {
  cpus: "CPU limit",
  memoryBytes: "memory limit",
  pidsMax: "PID limit",
  logBytes: "log size",
};

function describe(name: CappedLimit, value: number): string {
  if (name === "cpus") return `${value} cores`;
  if (name === "pidsMax") return String(value);
  return formatBytes(value);
}

function defined<T extends object>(values: T): Partial<T> {
  return Object.fromEntries(Object.entries(values).filter(([, value]) => value !== undefined)) as Partial<T>;
}

function checkField(name: string, value: number, integer: boolean): void {
  if (!Number.isFinite(value) || value < 0 || (integer && !Number.isSafeInteger(value))) {
    throw new JobberError(
      "INVALID_ARGUMENT",
      `limit ${name} must be a ${integer ? "whole " : ""}number ≥ 0 (0 = default), got ${value}`,
    );
  }
}

/** Validates a client's limits against the policy and fills in the defaults. */
export function resolveLimits(requested: Limits, policy: LimitPolicy = DEFAULT_POLICY): ResolvedLimits {
  const { defaults, maximums } = policy;
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
    throw new JobberError("INVALID_ARGUMENT", `limit cpus must be between ${MIN_CPUS} and ${MAX_CPUS} cores`);
  }
  if (limits.memoryBytes !== 0 && limits.memoryBytes < MIN_MEMORY_BYTES) {
    throw new JobberError("INVALID_ARGUMENT", "limit memoryBytes must be at least 1 MiB");
  }
  for (const name of Object.keys(LIMIT_WORDS) as CappedLimit[]) {
    const maximum = maximums[name];
    if (maximum > 0 && limits[name] > maximum) {
      throw new JobberError(
        "INVALID_ARGUMENT",
        `limit ${name} ${describe(name, limits[name])} is over the maximum per job, ${MAXIMUM_NAMES[name]} = ${describe(name, maximum)}`,
      );
    }
  }
  return limits;
}
