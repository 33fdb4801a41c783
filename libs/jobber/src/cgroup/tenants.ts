// The tenant level of the cgroup tree: created with its limits for a
// tenant's first job, removed after its last. Both happen synchronously,
// under a count of the jobs that hold it, so a job starting while the last
// one's cleanup runs can never find its tenant's cgroup removed under it:
// the check and the rmdir are one step of the event loop, and the start's
// mkdirs another.
import { mkdirSync, rmdirSync } from "node:fs";
import { errnoCode } from "../errors";

export interface TenantLevel {
  /** The tenant's directory in every hierarchy the driver uses. */
  dirs(tenant: string): string[];
  /** Writes the tenant's limits into its (existing) directories. */
  applyLimits(tenant: string): void;
}

export class TenantCgroups {
  /** Jobs holding each tenant's cgroup, in this process. */
  private readonly holders = new Map<string, number>();

  constructor(
    private readonly level: TenantLevel,
    private readonly warn: (message: string) => void,
  ) {}

  /**
   * The tenant's cgroup exists and is held for one more job. Its first
   * holder in this process (re)writes its limits, so that a restart with
   * other quotas applies them. With `bestEffort` (adopting a running job) a
   * failure to do so is reported, not thrown: the job runs already.
   */
  acquire(tenant: string, { bestEffort = false } = {}): void {
    const held = this.holders.get(tenant) ?? 0;
    if (held === 0) {
      try {
        for (const dir of this.level.dirs(tenant)) mkdirSync(dir, { recursive: true });
        this.level.applyLimits(tenant);
      } catch (error) {
        if (!bestEffort) {
          this.removeIfUnused(tenant);
          throw error;
        }
        this.warn(`tenant ${tenant.slice(0, 12)}: cannot set its cgroup limits: ${error}`);
      }
    }
    this.holders.set(tenant, held + 1);
  }

  /** One job less; the last one removes the tenant's cgroup. */
  release(tenant: string): void {
    const held = (this.holders.get(tenant) ?? 0) - 1;
    if (held > 0) {
      this.holders.set(tenant, held);
      return;
    }
    this.holders.delete(tenant);
    this.removeIfUnused(tenant);
  }

  /** Removes the cgroups of tenants no job holds (a daemon that died between a job's end and its tenant's). */
  sweep(tenants: string[]): void {
    for (const tenant of tenants) if (!this.holders.has(tenant)) this.removeIfUnused(tenant);
  }

  private removeIfUnused(tenant: string): void {
    // On a hybrid host the tenant has a directory in every hierarchy; each goes on its own.
    for (const dir of this.level.dirs(tenant)) {
      try {
        rmdirSync(dir);
      } catch (error) {
        const code = errnoCode(error);
        // EBUSY: a job cgroup that would not go away is still in it; the tenant's next release retries.
        if (code !== "ENOENT" && code !== "EBUSY") {
          this.warn(`tenant ${tenant.slice(0, 12)}: cannot remove its cgroup ${dir}: ${error}`);
        }
      }
    }
  }
}
