// cgroup v2: lifecycle for every host, and limits on a unified host.
import {
  closeSync,
  constants,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { errnoCode } from "../errors";
import type { ResolvedLimits } from "../limits";
import type { CgroupDriver, JobCgroup } from "./cgroup";
import { type DeviceNumber, parseKeyedCounters, v2LimitFiles } from "./files";

const LIMIT_CONTROLLERS = ["cpu", "memory", "io", "pids"];

export function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    if (errnoCode(error) === "ENOENT") return undefined;
    throw error;
  }
}

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

/** The v2 directory of one job: lifecycle files, and limits when `limits` is on. */
export class V2JobCgroup implements JobCgroup {
  readonly eventsPath: string;

  constructor(
    readonly name: string,
    readonly dir: string,
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

  remove(): Promise<void> {
    return removeCgroupDir(this.dir);
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

  constructor(
    root: string,
    parent: string,
    private readonly devices: DeviceNumber[],
  ) {
    ({ parentDir: this.parentDir, controllers: this.controllers } = prepareParent(root, parent));
  }

  create(name: string, limits: ResolvedLimits): JobCgroup {
    const dir = join(this.parentDir, name);
    mkdirSync(dir);
    try {
      for (const [file, content] of v2LimitFiles(limits, this.devices)) {
        const controller = file.slice(0, file.indexOf("."));
        if (this.controllers.includes(controller)) writeLimit(join(dir, file), content);
      }
    } catch (error) {
      rmdirSync(dir);
      throw error;
    }
    return new V2JobCgroup(name, dir);
  }

  open(name: string): JobCgroup {
    return new V2JobCgroup(name, join(this.parentDir, name));
  }

  list(): string[] {
    return listChildren(this.parentDir);
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
