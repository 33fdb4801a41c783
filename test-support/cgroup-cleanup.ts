// After a test: kill whatever a test left running under a cgroup parent and
// remove the parent from every hierarchy.
import { existsSync, readdirSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export function removeCgroupParent(parent: string): void {
  for (const hierarchy of ["unified", "cpu", "memory", "blkio", "pids", "."]) {
    const dir = join("/sys/fs/cgroup", hierarchy, parent);
    if (existsSync(dir)) killAndRemoveTree(dir);
  }
}

function killAndRemoveTree(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) killAndRemoveTree(join(dir, entry.name));
  }
  try {
    writeFileSync(join(dir, "cgroup.kill"), "1");
  } catch {
    // A v1 hierarchy: its processes go with the v2 kill.
  }
  // Killed processes take a moment to leave the cgroup.
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      rmdirSync(dir);
      return;
    } catch {
      Bun.sleepSync(10);
    }
  }
}
