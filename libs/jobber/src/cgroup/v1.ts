// The v1-hybrid host: limits on the v1 controllers, lifecycle on the
// controller-less v2 tree mounted at <root>/unified.
import { constants, existsSync, mkdirSync, openSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ResolvedLimits } from "../limits";
import { readIfExists } from "../read-if-exists";
import { type CgroupDriver, type JobCgroup, type TenantLimits, TenantPidsFullError } from "./cgroup";
import {
  type DeviceNumber,
  parseKeyedCounters,
  type V1Controller,
  v1LimitFiles,
  v1TenantFiles,
  withinTenantCpus,
} from "./files";
import { TenantCgroups } from "./tenants";
import { closeAll, listChildren, removeCgroupDir, V2JobCgroup, v2LifecycleParent } from "./v2";

const CONTROLLERS: V1Controller[] = ["cpu", "memory", "blkio", "pids"];

class V1HybridJobCgroup implements JobCgroup {
  private readonly lifecycle: V2JobCgroup;
  readonly eventsPath: string;

  constructor(
    readonly name: string,
    v2Dir: string,
    private readonly controllerDirs: Map<V1Controller, string>,
    /** Called once every directory is gone: lets go of the tenant's cgroup. */
    onRemoved: () => void,
  ) {
    this.lifecycle = new V2JobCgroup(name, v2Dir, onRemoved);
    this.eventsPath = this.lifecycle.eventsPath;
  }

  openForLaunch() {
    const v1ProcsFds: number[] = [];
    const { cgroupFd } = this.lifecycle.openForLaunch();
    try {
      for (const dir of this.controllerDirs.values()) {
        v1ProcsFds.push(openSync(join(dir, "cgroup.procs"), constants.O_WRONLY));
      }
    } catch (error) {
      closeAll([cgroupFd, ...v1ProcsFds]);
      throw error;
    }
    return { cgroupFd, v1ProcsFds };
  }

  populated(): boolean {
    return this.lifecycle.populated();
  }

  kill(): void {
    this.lifecycle.kill();
  }

  oomKills(): number {
    const memoryDir = this.controllerDirs.get("memory");
    const control = memoryDir && readIfExists(join(memoryDir, "memory.oom_control"));
    return control ? (parseKeyedCounters(control).get("oom_kill") ?? 0) : 0;
  }

  async remove(): Promise<void> {
    await removeCgroupDir(this.lifecycle.dir);
    for (const dir of this.controllerDirs.values()) await removeCgroupDir(dir);
    this.lifecycle.released();
  }

  /** After a failed creation: whatever exists goes, and the tenant is let go. */
  discard(): void {
    for (const dir of [this.lifecycle.dir, ...this.controllerDirs.values()]) {
      try {
        rmdirSync(dir);
      } catch {
        // Not created, or (never here) not empty.
      }
    }
    this.lifecycle.released();
  }
}

export class V1HybridDriver implements CgroupDriver {
  readonly layout = "v1-hybrid" as const;
  private readonly v2Parent: string;
  private readonly controllerParents = new Map<V1Controller, string>();
  private readonly memswAvailable: boolean;
  private readonly tenants: TenantCgroups;

  constructor(
    root: string,
    parent: string,
    private readonly devices: DeviceNumber[],
    private readonly tenantLimits: TenantLimits,
    warn: (message: string) => void,
  ) {
    this.v2Parent = v2LifecycleParent(join(root, "unified"), parent);
    for (const controller of CONTROLLERS) {
      const hierarchy = join(root, controller);
      // A host may lack a controller (no pids on old kernels): its limit is skipped.
      if (!existsSync(join(hierarchy, "cgroup.procs"))) continue;
      const dir = join(hierarchy, parent);
      mkdirSync(dir, { recursive: true });
      this.controllerParents.set(controller, dir);
    }
    const memory = this.controllerParents.get("memory");
    this.memswAvailable = memory !== undefined && existsSync(join(memory, "memory.memsw.limit_in_bytes"));
    this.tenants = new TenantCgroups(
      {
        dirs: (tenant) => [join(this.v2Parent, tenant), ...this.dirs(tenant).values()],
        applyLimits: (tenant) => this.writeLimits(this.dirs(tenant), v1TenantFiles(this.tenantLimits)),
      },
      warn,
    );
  }

  /** The directories of `path` (under the parent) in each v1 controller's hierarchy. */
  private dirs(path: string): Map<V1Controller, string> {
    return new Map([...this.controllerParents].map(([controller, dir]) => [controller, join(dir, path)]));
  }

  create(tenant: string, name: string, limits: ResolvedLimits): JobCgroup {
    this.tenants.acquire(tenant);
    try {
      this.checkTenantPids(tenant);
    } catch (error) {
      this.tenants.release(tenant);
      throw error;
    }
    const path = `${tenant}/${name}`;
    const dirs = this.dirs(path);
    const cgroup = new V1HybridJobCgroup(path, join(this.v2Parent, path), dirs, () =>
      this.tenants.release(tenant),
    );
    try {
      mkdirSync(join(this.v2Parent, path));
      for (const dir of dirs.values()) mkdirSync(dir);
      const files = v1LimitFiles(
        withinTenantCpus(limits, this.tenantLimits),
        this.devices,
        this.memswAvailable,
      );
      this.writeLimits(dirs, files);
    } catch (error) {
      cgroup.discard();
      throw error;
    }
    return cgroup;
  }

  open(tenant: string, name: string): JobCgroup {
    this.tenants.acquire(tenant, { bestEffort: true });
    const path = `${tenant}/${name}`;
    return new V1HybridJobCgroup(path, join(this.v2Parent, path), this.dirs(path), () =>
      this.tenants.release(tenant),
    );
  }

  list(): string[] {
    const names = new Set<string>();
    for (const parent of [this.v2Parent, ...this.controllerParents.values()]) {
      for (const tenant of listChildren(parent)) {
        names.add(tenant);
        for (const job of listChildren(join(parent, tenant))) names.add(`${tenant}/${job}`);
      }
    }
    return [...names];
  }

  sweep(): void {
    const tenants = new Set<string>();
    for (const parent of [this.v2Parent, ...this.controllerParents.values()]) {
      for (const tenant of listChildren(parent)) tenants.add(tenant);
    }
    this.tenants.sweep([...tenants]);
  }

  /**
   * On v1 a job's init joins its pids cgroup by moving into it, and the
   * kernel lets a process move into a full cgroup (only forks are refused):
   * init would get in over the tenant's ceiling and then fail to fork the
   * command. So a tenant without room for init and the command is refused
   * here. (On v2 init is born in the cgroup and clone3 itself is refused.)
   */
  private checkTenantPids(tenant: string): void {
    const pids = this.controllerParents.get("pids");
    if (!pids) return;
    const max = readIfExists(join(pids, tenant, "pids.max"))?.trim();
    const current = Number(readIfExists(join(pids, tenant, "pids.current")) ?? 0);
    if (max === undefined || max === "max") return;
    if (current + 2 > Number(max)) {
      throw new TenantPidsFullError(`the tenant's jobs hold ${current} of their ${max} processes`);
    }
  }

  private writeLimits(dirs: Map<V1Controller, string>, files: [V1Controller, string, string][]): void {
    for (const [controller, file, content] of files) {
      const dir = dirs.get(controller);
      if (dir) writeFileSync(join(dir, file), content);
    }
  }
}
