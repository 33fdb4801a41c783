// One small interface over both cgroup layouts, chosen once at start-up.
// The tree is <parent>/<tenant>/<job>: the tenant level carries the totals
// over one tenant's running jobs, each job's own level its limits.
import type { ResolvedLimits, TenantQuotas } from "../limits";

/** What a tenant's cgroup holds its jobs to, together; 0 means no ceiling. */
export type TenantLimits = Omit<TenantQuotas, "jobs">;

/** The cgroup of one job. Lifecycle always goes through the cgroup v2 tree. */
export interface JobCgroup {
  /** Its path under the cgroup parent: `<tenant>/<job>`. */
  readonly name: string;
  /** cgroup v2 `cgroup.events`: "populated 0" means every process of the job is gone. */
  readonly eventsPath: string;
  /** Opens what the launcher needs to start a process inside this cgroup; the caller closes the fds. */
  openForLaunch(): { cgroupFd: number; v1ProcsFds: number[] };
  /** True while any process of the job is alive; false when it is empty or gone. */
  populated(): boolean;
  /** SIGKILL to every process in the cgroup (`cgroup.kill`). */
  kill(): void;
  /** How many processes the OOM killer has killed in this cgroup. */
  oomKills(): number;
  /**
   * Removes the cgroup (all its directories); it must be empty. The
   * tenant's cgroup goes too when this was its last job. Idempotent.
   */
  remove(): Promise<void>;
}

export interface CgroupDriver {
  /** "v2" on a unified host, "v1-hybrid" when limits live on v1 controllers. */
  readonly layout: "v2" | "v1-hybrid";
  /** Creates a job's cgroup with its limits applied, and its tenant's when it is the tenant's first. */
  create(tenant: string, name: string, limits: ResolvedLimits): JobCgroup;
  /** The cgroup of an existing job (re-adoption after a restart). */
  open(tenant: string, name: string): JobCgroup;
  /** Tenant cgroups (`<tenant>`) and job cgroups (`<tenant>/<job>`) that exist now, in any hierarchy. */
  list(): string[];
  /** Removes tenant cgroups that no job holds (left behind by a daemon that died). */
  sweep(): void;
}

/** A tenant's cgroup has no room for a new job's processes (its pids ceiling is reached). */
export class TenantPidsFullError extends Error {
  override readonly name = "TenantPidsFullError";
}
