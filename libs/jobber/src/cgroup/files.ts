// The contents of cgroup limit files, as pure functions so that both
// formats are unit-tested whatever the host runs.
import type { ResolvedLimits } from "../limits";
import type { TenantLimits } from "./cgroup";

/** A block device as "major:minor". */
export type DeviceNumber = `${number}:${number}`;

/** The CFS period for CPU limits: 100 ms, the kernel's default. */
const CPU_PERIOD_US = 100_000;

function cpuQuotaUs(cpus: number): number {
  // The kernel refuses quotas under 1 ms.
  return Math.max(1000, Math.round(cpus * CPU_PERIOD_US));
}

/** File name → content for a cgroup v2 directory, in the order to write them. */
export function v2LimitFiles(limits: ResolvedLimits, devices: DeviceNumber[]): [string, string][] {
  const files: [string, string][] = [];
  files.push([
    "cpu.max",
    limits.cpus === 0 ? `max ${CPU_PERIOD_US}` : `${cpuQuotaUs(limits.cpus)} ${CPU_PERIOD_US}`,
  ]);
  files.push(["memory.max", limits.memoryBytes === 0 ? "max" : String(limits.memoryBytes)]);
  files.push(["memory.swap.max", limits.memoryBytes === 0 ? "max" : "0"]);
  for (const device of devices) {
    const rbps = limits.ioReadBps === 0 ? "max" : String(limits.ioReadBps);
    const wbps = limits.ioWriteBps === 0 ? "max" : String(limits.ioWriteBps);
    files.push(["io.max", `${device} rbps=${rbps} wbps=${wbps}`]);
  }
  files.push(["pids.max", limits.pidsMax === 0 ? "max" : String(limits.pidsMax)]);
  return files;
}

export type V1Controller = "cpu" | "memory" | "blkio" | "pids";

/** Controller → [file name, content] for cgroup v1, in the order to write them. */
export function v1LimitFiles(
  limits: ResolvedLimits,
  devices: DeviceNumber[],
  memswAvailable: boolean,
): [V1Controller, string, string][] {
  const files: [V1Controller, string, string][] = [];
  files.push(["cpu", "cpu.cfs_period_us", String(CPU_PERIOD_US)]);
  files.push(["cpu", "cpu.cfs_quota_us", limits.cpus === 0 ? "-1" : String(cpuQuotaUs(limits.cpus))]);
  const memory = limits.memoryBytes === 0 ? "-1" : String(limits.memoryBytes);
  // memsw must never be below the memory limit, so memory goes first; equal
  // values leave no room for swap.
  files.push(["memory", "memory.limit_in_bytes", memory]);
  if (memswAvailable) files.push(["memory", "memory.memsw.limit_in_bytes", memory]);
  files.push(["memory", "memory.swappiness", "0"]);
  for (const device of devices) {
    // 0 removes a throttle rule in v1.
    files.push(["blkio", "blkio.throttle.read_bps_device", `${device} ${limits.ioReadBps}`]);
    files.push(["blkio", "blkio.throttle.write_bps_device", `${device} ${limits.ioWriteBps}`]);
  }
  files.push(["pids", "pids.max", limits.pidsMax === 0 ? "max" : String(limits.pidsMax)]);
  return files;
}

/** File name → content for a tenant's cgroup v2 directory: totals over its jobs. */
export function v2TenantFiles(limits: TenantLimits): [string, string][] {
  return [
    ["cpu.max", limits.cpus === 0 ? `max ${CPU_PERIOD_US}` : `${cpuQuotaUs(limits.cpus)} ${CPU_PERIOD_US}`],
    ["memory.max", limits.memoryBytes === 0 ? "max" : String(limits.memoryBytes)],
    ["pids.max", limits.pidsMax === 0 ? "max" : String(limits.pidsMax)],
  ];
}

/** Controller → [file name, content] for a tenant's cgroup v1 directories. */
export function v1TenantFiles(limits: TenantLimits): [V1Controller, string, string][] {
  return [
    ["cpu", "cpu.cfs_period_us", String(CPU_PERIOD_US)],
    ["cpu", "cpu.cfs_quota_us", limits.cpus === 0 ? "-1" : String(cpuQuotaUs(limits.cpus))],
    ["memory", "memory.limit_in_bytes", limits.memoryBytes === 0 ? "-1" : String(limits.memoryBytes)],
    ["pids", "pids.max", limits.pidsMax === 0 ? "max" : String(limits.pidsMax)],
  ];
}

/**
 * cgroup v1 refuses a child's CPU quota above its parent's (EINVAL), where
 * v2 takes the smaller of the two: a job asking for more cores than its
 * tenant has gets the tenant's, which is what it would get on v2 anyway.
 */
export function withinTenantCpus(limits: ResolvedLimits, tenant: TenantLimits): ResolvedLimits {
  return tenant.cpus > 0 && limits.cpus > tenant.cpus ? { ...limits, cpus: tenant.cpus } : limits;
}

/** Reads "key value" lines (cgroup.events, memory.events, memory.oom_control). */
export function parseKeyedCounters(text: string): Map<string, number> {
  const counters = new Map<string, number>();
  for (const line of text.split("\n")) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value !== undefined) counters.set(key, Number(value));
  }
  return counters;
}
