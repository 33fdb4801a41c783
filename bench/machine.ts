// What the figures were measured on: they mean little without it.
import {
  closeSync,
  constants,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
} from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { type Summary, summarize } from "./stats";

export interface Machine {
  cores: number;
  cpuModel: string;
  memoryBytes: number;
  kernel: string;
  cgroupLayout: "v2" | "v1-hybrid" | "unknown";
  /** The filesystem under BENCH_ROOT, where the state directory lives (job logs and records). */
  stateFilesystem: { mountPoint: string; type: string; device: string; journal: boolean | "n/a" };
  bun: string;
  gitCommit: string;
}

export function describeMachine(stateRoot: string): Machine {
  return {
    cores: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? "unknown",
    memoryBytes: os.totalmem(),
    kernel: os.release(),
    cgroupLayout: existsSync("/sys/fs/cgroup/cgroup.controllers")
      ? "v2"
      : existsSync("/sys/fs/cgroup/unified/cgroup.controllers")
        ? "v1-hybrid"
        : "unknown",
    stateFilesystem: filesystemOf(stateRoot),
    bun: `${Bun.version} (${Bun.revision.slice(0, 9)})`,
    gitCommit: gitCommit(),
  };
}

/** The mount that holds `path` (longest matching mount point in /proc/self/mounts). */
function filesystemOf(path: string): Machine["stateFilesystem"] {
  let best = { mountPoint: "/", type: "unknown", device: "unknown" };
  for (const line of readFileSync("/proc/self/mounts", "utf8").split("\n")) {
    const [device, mountPoint, type] = line.split(" ");
    if (!device || !mountPoint || !type) continue;
    const inside = path === mountPoint || path.startsWith(mountPoint === "/" ? "/" : `${mountPoint}/`);
    if (inside && mountPoint.length >= best.mountPoint.length) best = { mountPoint, type, device };
  }
  // ext4 without a journal has no jbd2 entry. It matters: without one, ext4
  // will not reuse an inode freed in the last minutes and scans past each of
  // them on every file creation (recently_deleted() in fs/ext4/ialloc.c).
  const deviceName = best.device.replace(/^\/dev\//, "");
  const journal =
    best.type === "ext4" || best.type === "ext3"
      ? readDirNames("/proc/fs/jbd2").some((name) => name.startsWith(deviceName))
      : "n/a";
  return { ...best, journal };
}

function readDirNames(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function gitCommit(): string {
  try {
    const head = Bun.spawnSync(["git", "rev-parse", "--short", "HEAD"], { cwd: import.meta.dir });
    if (head.exitCode !== 0) return "unknown";
    const dirty = Bun.spawnSync(["git", "status", "--porcelain"], { cwd: import.meta.dir }).stdout.length > 0;
    return `${head.stdout.toString().trim()}${dirty ? " (with uncommitted changes)" : ""}`;
  } catch {
    // No git on this host.
    return "unknown";
  }
}

/**
 * What creating an empty file costs right now in `root` (µs): a StartJob
 * creates several in the state directory. On ext4 without a journal this
 * swings from ~0.1 to ~1 ms with how many inodes the host freed in the
 * last minutes, so the run records it.
 */
export function fileCreationMicros(root: string, files = 100): Summary {
  const dir = mkdtempSync(join(root, "jobber-bench-fs-"));
  try {
    const micros: number[] = [];
    for (let i = 0; i < files; i++) {
      const began = performance.now();
      closeSync(
        openSync(join(dir, String(i)), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600),
      );
      micros.push((performance.now() - began) * 1000);
    }
    return summarize(micros);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
