// The v1-hybrid host: limits on the v1 controllers, lifecycle on the
// controller-less v2 tree mounted at <root>/unified.
import { constants, existsSync, mkdirSync, openSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ResolvedLimits } from "../limits";
import type { CgroupDriver, JobCgroup } from "./cgroup";
import { type DeviceNumber, parseKeyedCounters, type V1Controller, v1LimitFiles } from "./files";
import { closeAll, listChildren, readIfExists, removeCgroupDir, V2JobCgroup, v2LifecycleParent } from "./v2";

const CONTROLLERS: V1Controller[] = ["cpu", "memory", "blkio", "pids"];

class V1HybridJobCgroup implements JobCgroup {
  private readonly lifecycle: V2JobCgroup;
  readonly eventsPath: string;

  constructor(
    readonly name: string,
    v2Dir: string,
    private readonly controllerDirs: Map<V1Controller, string>,
  ) {
    this.lifecycle = new V2JobCgroup(name, v2Dir);
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
    await this.lifecycle.remove();
    for (const dir of this.controllerDirs.values()) await removeCgroupDir(dir);
  }
}

export class V1HybridDriver implements CgroupDriver {
  readonly layout = "v1-hybrid" as const;
  private readonly v2Parent: string;
  private readonly controllerParents = new Map<V1Controller, string>();
  private readonly memswAvailable: boolean;

  constructor(
    root: string,
    parent: string,
    private readonly devices: DeviceNumber[],
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
  }

  private dirs(name: string): Map<V1Controller, string> {
    return new Map([...this.controllerParents].map(([controller, dir]) => [controller, join(dir, name)]));
  }

  create(name: string, limits: ResolvedLimits): JobCgroup {
    const dirs = this.dirs(name);
    const cgroup = new V1HybridJobCgroup(name, join(this.v2Parent, name), dirs);
    mkdirSync(join(this.v2Parent, name));
    try {
      for (const dir of dirs.values()) mkdirSync(dir);
      for (const [controller, file, content] of v1LimitFiles(limits, this.devices, this.memswAvailable)) {
        const dir = dirs.get(controller);
        if (dir) writeFileSync(join(dir, file), content);
      }
    } catch (error) {
      void cgroup.remove();
      throw error;
    }
    return cgroup;
  }

  open(name: string): JobCgroup {
    return new V1HybridJobCgroup(name, join(this.v2Parent, name), this.dirs(name));
  }

  list(): string[] {
    const names = new Set(listChildren(this.v2Parent));
    for (const dir of this.controllerParents.values()) for (const name of listChildren(dir)) names.add(name);
    return [...names];
  }
}
