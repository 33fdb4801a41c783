// Each tenant's jobs run in user namespaces whose ids map onto a host range
// of that tenant's own, so that tenants never share a host uid: not in
// per-user kernel quotas (inotify instances, pending signals, message
// queues), keyrings, nor file ownership.
//
// Ranges lie far above the host's users (and above the subordinate ranges
// /etc/subuid hands out from 100000): from 2^30, 65,536 ids each, room for
// 49,151 tenants. They are allocated once and persisted in
//   <state>/id-ranges/<tenant>    the range's index, as a decimal number
// so a tenant keeps its range across daemon restarts.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { JobberError } from "./errors";

/** Ids of one user namespace: 0 … 65535, so that nobody (65534) exists inside. */
export const IDS_PER_TENANT = 65536;
/** The first host id handed out. */
export const FIRST_HOST_ID = 2 ** 30;
/** uid 2^32 - 1 is (uid_t)-1, which no one may have. */
const MAX_RANGES = Math.floor((2 ** 32 - 1 - FIRST_HOST_ID) / IDS_PER_TENANT);

export interface IdRange {
  /** The host uid and gid that id 0 inside maps to. */
  hostBase: number;
  count: number;
}

export class TenantIdRanges {
  private readonly dir: string;
  private readonly byTenant = new Map<string, number>();
  private next = 0;

  constructor(stateDir: string) {
    this.dir = join(stateDir, "id-ranges");
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    for (const tenant of readdirSync(this.dir)) {
      if (!/^[0-9a-f]{64}$/.test(tenant)) continue;
      const index = Number(readFileSync(join(this.dir, tenant), "utf8").trim());
      if (!Number.isSafeInteger(index) || index < 0 || index >= MAX_RANGES) continue;
      this.byTenant.set(tenant, index);
      this.next = Math.max(this.next, index + 1);
    }
  }

  /** The tenant's range, allocated (and persisted) on first use. */
  of(tenant: string): IdRange {
    let index = this.byTenant.get(tenant);
    if (index === undefined) {
      if (this.next >= MAX_RANGES) {
        throw new JobberError(
          "INTERNAL",
          `no host id range left for a new tenant (all ${MAX_RANGES} are taken)`,
        );
      }
      index = this.next;
      // Persisted before use: a job must never run in a range another tenant may get after a restart.
      writeFileSync(join(this.dir, tenant), `${index}\n`, { mode: 0o600, flag: "wx" });
      this.byTenant.set(tenant, index);
      this.next = index + 1;
    }
    return { hostBase: FIRST_HOST_ID + index * IDS_PER_TENANT, count: IDS_PER_TENANT };
  }
}
