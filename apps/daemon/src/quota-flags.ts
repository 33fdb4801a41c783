// jobberd's settings for what jobs and tenants may use (the original plan's §9.2 table; docs/design.md): the
// flags, and their mapping to the daemon's options. Unset means the
// library's default, which depends on the host (its cores, memory, pid_max).
import { type DaemonOptions, DEFAULT_TENANT_STREAMS } from "./daemon";
import { parseCount, parseCpus, parseDuration, parseShareOrSize, parseSize } from "./units";

const flag = (description: string) => ({ type: "string", description }) as const;

export const quotaFlags = {
  "default-cpus": flag("CPU cores of a job that asks for none (default 1)"),
  "default-memory": flag("memory of a job that asks for none (default 1G)"),
  "default-pids": flag("processes of a job that asks for none (default 1024)"),
  "default-log": flag("log size of a job that asks for none; output past it is dropped (default 256M)"),
  "max-cpus": flag("most CPU cores one job may ask for (default: the host's cores)"),
  "max-memory": flag("most memory one job may ask for (default: the host's memory)"),
  "max-pids": flag("most processes one job may ask for (default 32768)"),
  "max-log": flag("largest log one job may ask for (default 4G)"),
  "tenant-jobs": flag("running jobs per tenant (default 100)"),
  "tenant-cpus": flag("CPU cores of one tenant's running jobs together (default: the host's cores)"),
  "tenant-memory": flag("memory of one tenant's running jobs together (default: the host's memory)"),
  "tenant-pids": flag("processes of one tenant's running jobs together (default: a quarter of pid_max)"),
  "tenant-streams": flag(`concurrent FollowJobLog streams per tenant (default ${DEFAULT_TENANT_STREAMS})`),
  retention: flag("finished jobs older than this are removed, e.g. 168h; 0 keeps them (default 168h)"),
  "min-free": flag(
    "StartJob is refused while the state filesystem has less free, e.g. 5% or 2G (default 5%)",
  ),
} as const;

type QuotaFlagValues = { [name in keyof typeof quotaFlags]?: string };

type QuotaOptions = Pick<
  DaemonOptions,
  "defaultLimits" | "maxLimits" | "tenantQuotas" | "tenantStreams" | "retentionMs" | "minFree"
>;

const DEFAULT_RETENTION = "168h";

/** The flags' values as daemon options; throws SettingError naming a flag that does not parse. */
export function quotaOptions(values: QuotaFlagValues): QuotaOptions {
  const read = <T>(name: keyof typeof quotaFlags, parse: (setting: string, text: string) => T) => {
    const text = values[name];
    return text === undefined ? undefined : parse(`--${name}`, text);
  };
  return {
    defaultLimits: {
      cpus: read("default-cpus", parseCpus),
      memoryBytes: read("default-memory", parseSize),
      pidsMax: read("default-pids", parseCount),
      logBytes: read("default-log", parseSize),
    },
    maxLimits: {
      cpus: read("max-cpus", parseCpus),
      memoryBytes: read("max-memory", parseSize),
      pidsMax: read("max-pids", parseCount),
      logBytes: read("max-log", parseSize),
    },
    tenantQuotas: {
      jobs: read("tenant-jobs", parseCount),
      cpus: read("tenant-cpus", parseCpus),
      memoryBytes: read("tenant-memory", parseSize),
      pidsMax: read("tenant-pids", parseCount),
    },
    tenantStreams: read("tenant-streams", parseCount),
    retentionMs: parseDuration("--retention", values.retention ?? DEFAULT_RETENTION),
    minFree: read("min-free", parseShareOrSize),
  };
}
