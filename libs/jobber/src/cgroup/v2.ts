// cgroup v2: lifecycle for every host, and limits on a unified host.
import {
  closeSync,
  constants,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  rmdirSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { errnoCode } from "../errors";
import type { ResolvedLimits } from "../limits";
import { readIfExists } from "../read-if-exists";
import type { CgroupDriver, JobCgroup, TenantLimits } from "./cgroup";
import { type DeviceNumber, parseKeyedCounters, v2LimitFiles, v2TenantFiles } from "./files";
import { TenantCgroups } from "./tenants";

const LIMIT_CONTROLLERS = ["cpu", "memory", "io", "pids"];

/** rmdir that tolerates a directory already gone. The kernel may still be
 * tearing down the last exited task for a moment after "populated 0"; that
 * shows as EBUSY and is retried briefly. */
export async function removeCgroupDir(path: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      rmdirSync(path);
      return;
    } catch (error) {
      const code = errnoCode(error);
      if (code === "ENOENT") return;
      if (code !== "EBUSY" || attempt >= 50) throw error;
      await Bun.sleep(Math.min(2 ** attempt, 20));
    }
  }
}

/** The v2 directory of one job: lifecycle files, and limits on a unified host. */
export class V2JobCgroup implements JobCgroup {
  readonly eventsPath: string;
  private removed = false;

  constructor(
    readonly name: string,
    readonly dir: string,
    /** Called once the directory is gone: lets go of the tenant's cgroup. */
    private readonly onRemoved: () => void = () => {},
  ) {
    this.eventsPath = join(dir, "cgroup.events");
  }

  openForLaunch() {
    return { cgroupFd: openSync(this.dir, constants.O_RDONLY | constants.O_DIRECTORY), v1ProcsFds: [] };
  }

  populated(): boolean {
    const events = readIfExists(this.eventsPath);
    return events !== undefined && parseKeyedCounters(events).get("populated") === 1;
  }

  kill(): void {
    try {
      writeFileSync(join(this.dir, "cgroup.kill"), "1");
    } catch (error) {
      if (errnoCode(error) !== "ENOENT") throw error;
    }
  }

  oomKills(): number {
    const events = readIfExists(join(this.dir, "memory.events"));
    return events === undefined ? 0 : (parseKeyedCounters(events).get("oom_kill") ?? 0);
  }

  async remove(): Promise<void> {
    await removeCgroupDir(this.dir);
    this.released();
  }

  /** Lets go of the tenant's cgroup, once. */
  released(): void {
    if (this.removed) return;
    this.removed = true;
    this.onRemoved();
  }
}

/** Creates `<root>/<parent>` and enables the limit controllers the host has for its children. */
function prepareParent(root: string, parent: string): { parentDir: string; controllers: string[] } {
  const parentDir = join(root, parent);
  mkdirSync(parentDir, { recursive: true });
  const available = (readIfExists(join(root, "cgroup.controllers")) ?? "").split(/\s+/);
  const controllers = LIMIT_CONTROLLERS.filter((c) => available.includes(c));
  if (controllers.length > 0) {
    const enable = controllers.map((c) => `+${c}`).join(" ");
    writeFileSync(join(root, "cgroup.subtree_control"), enable);
    writeFileSync(join(parentDir, "cgroup.subtree_control"), enable);
  }
  return { parentDir, controllers };
}

function writeLimit(path: string, content: string): void {
  try {
    writeFileSync(path, content);
  } catch (error) {
    // A knob this kernel lacks (memory.swap.max without swap accounting) cannot be set.
    if (existsSync(path)) throw error;
  }
}

/** A unified (pure v2) host: lifecycle and limits in one tree. */
export class V2Driver implements CgroupDriver {
  readonly layout = "v2" as const;
  private readonly parentDir: string;
  private readonly controllers: string[];
  private readonly tenants: TenantCgroups;

  constructor(
    root: string,
    parent: string,
    private readonly devices: DeviceNumber[],
    private readonly tenantLimits: TenantLimits,
    warn: (message: string) => void,
  ) {
    ({ parentDir: this.parentDir, controllers: this.controllers } = prepareParent(root, parent));
    this.tenants = new TenantCgroups(
      {
        dirs: (tenant) => [join(this.parentDir, tenant)],
        applyLimits: (tenant) => {
          const dir = join(this.parentDir, tenant);
          if (this.controllers.length > 0) {
            // The tenant level hands the controllers on to its jobs.
            writeFileSync(
              join(dir, "cgroup.subtree_control"),
              this.controllers.map((c) => `+${c}`).join(" "),
            );
          }
          this.writeLimits(dir, v2TenantFiles(this.tenantLimits));
        },
      },
      warn,
    );
  }

  create(tenant: string, name: string, limits: ResolvedLimits): JobCgroup {
    this.tenants.acquire(tenant);
    const dir = join(this.parentDir, tenant, name);
    try {
      mkdirSync(dir);
    } catch (error) {
      this.tenants.release(tenant);
      throw error;
    }
    const cgroup = new V2JobCgroup(`${tenant}/${name}`, dir, () => this.tenants.release(tenant));
    try {
      this.writeLimits(dir, v2LimitFiles(limits, this.devices));
    } catch (error) {
      rmdirSync(dir);
      cgroup.released();
      throw error;
    }
    return cgroup;
  }

  open(tenant: string, name: string): JobCgroup {
    this.tenants.acquire(tenant, { bestEffort: true });
    return new V2JobCgroup(`${tenant}/${name}`, join(this.parentDir, tenant, name), () =>
      this.tenants.release(tenant),
    );
  }

  list(): string[] {
    return listChildren(this.parentDir).flatMap((tenant) => [
      tenant,
      ...listChildren(join(this.parentDir, tenant)).map((job) => `${tenant}/${job}`),
    ]);
  }

  sweep(): void {
    this.tenants.sweep(listChildren(this.parentDir));
  }

  private writeLimits(dir: string, files: [string, string][]): void {
    for (const [file, content] of files) {
      const controller = file.slice(0, file.indexOf("."));
      if (this.controllers.includes(controller)) writeLimit(join(dir, file), content);
    }
  }
}

export function listChildren(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name);
  } catch (error) {
    if (errnoCode(error) === "ENOENT") return [];
    throw error;
  }
}

/** The lifecycle-only v2 tree of a hybrid host (no controllers in it). */
export function v2LifecycleParent(root: string, parent: string): string {
  const dir = join(root, parent);
  mkdirSync(dir, { recursive: true });
  return dir;
}

export function closeAll(fds: number[]): void {
  for (const fd of fds) closeSync(fd);
}
