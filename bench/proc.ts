// What /proc says about a process the bench watches (jobberd, the raw grpc-js
// server, a job's processes). The bench's own: it imports nothing from the
// tests, whose fixtures set up directories when loaded.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

function statusField(pid: number, field: string): string {
  const line = readFileSync(`/proc/${pid}/status`, "utf8")
    .split("\n")
    .find((candidate) => candidate.startsWith(`${field}:`));
  if (!line) throw new Error(`/proc/${pid}/status has no ${field}`);
  return line.slice(field.length + 1).trim();
}

/** Resident set size now (VmRSS), in KiB. */
export function rssKiB(pid: number): number {
  return Number.parseInt(statusField(pid, "VmRSS"), 10);
}

function procStat(pid: number): { minorFaults: number; cpuSeconds: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name, which is in parentheses and may hold spaces;
  // utime and stime are in clock ticks, 100 Hz on Linux.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { minorFaults: Number(fields[7]), cpuSeconds: (Number(fields[11]) + Number(fields[12])) / 100 };
}

/** utime + stime of a process, in seconds (10 ms resolution). */
export function cpuSeconds(pid: number): number {
  return procStat(pid).cpuSeconds;
}

/** Page faults so far that needed no I/O (e.g. copy-on-write). */
export function minorFaults(pid: number): number {
  return procStat(pid).minorFaults;
}

export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

export function threadCount(pid: number): number {
  return readdirSync(`/proc/${pid}/task`).length;
}

/** Inotify watches the process holds, over all its inotify instances. */
export function inotifyWatches(pid: number): number {
  let watches = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (!readlinkSync(`/proc/${pid}/fd/${fd}`).includes("inotify")) continue;
      watches += readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8")
        .split("\n")
        .filter((line) => line.startsWith("inotify wd:")).length;
    } catch {
      // Closed while we looked.
    }
  }
  return watches;
}

/** PSS (KiB) of `pid` and all its descendants. */
export function treePssKiB(pid: number): number {
  let total = 0;
  const visit = (current: number) => {
    try {
      const rollup = readFileSync(`/proc/${current}/smaps_rollup`, "utf8");
      total += Number(/^Pss:\s+(\d+)/m.exec(rollup)?.[1] ?? 0);
      for (const task of readdirSync(`/proc/${current}/task`)) {
        const children = readFileSync(`/proc/${current}/task/${task}/children`, "utf8").trim();
        for (const child of children ? children.split(" ") : []) visit(Number(child));
      }
    } catch {
      // Gone while we looked.
    }
  };
  visit(pid);
  return total;
}
