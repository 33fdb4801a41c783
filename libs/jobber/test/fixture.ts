// A real Jobber on temporary directories and a cgroup parent of its own, so
// that a test can count what it leaves behind.
import { expect } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { removeCgroupParent } from "../../../test-support/cgroup-cleanup";
import { TEST_ROOT } from "../../../test-support/test-root";
import { type Jobber, type JobberOptions, openJobber } from "../src/index";

export { TEST_ROOT };

export interface Fixture {
  jobber: Jobber;
  home: string;
  stateDir: string;
  cgroupParent: string;
  /** Opens another Jobber on the same directories (a daemon restart), with other options if given. */
  reopen(overrides?: Partial<JobberOptions>): Jobber;
  cleanup(): void;
  /**
   * After a file's tests: cleans up whatever happened (and removes `extra`
   * paths), then asserts that no job's cgroup outlived the tests.
   */
  finish(...extra: string[]): Promise<void>;
}

export function createFixture(options: Partial<JobberOptions> = {}): Fixture {
  const home = mkdtempSync(join(TEST_ROOT, "jobber-home-"));
  const stateDir = mkdtempSync(join(TEST_ROOT, "jobber-state-"));
  const cgroupParent = `jobber-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  mkdirSync(join(home, "pool"), { mode: 0o700 });
  writeFileSync(join(home, "secret.key"), "the daemon's private key\n", { mode: 0o600 });
  const open = (overrides: Partial<JobberOptions> = {}) =>
    openJobber({
      home,
      stateDir,
      cgroupParent,
      stopGraceMs: 1000,
      // Tests start a hundred jobs at once while others end: the quota has tests of its own (tenants.test.ts).
      tenantQuotas: { jobs: 1000 },
      ...options,
      ...overrides,
    });
  const fixture: Fixture = {
    jobber: open(),
    home,
    stateDir,
    cgroupParent,
    reopen(overrides) {
      // As a daemon restart: the old one lets go of its jobs, which keep running.
      fixture.jobber.close();
      fixture.jobber = open(overrides);
      return fixture.jobber;
    },
    async finish(...extra: string[]) {
      let leftover: string[] = [];
      try {
        await fixture.jobber.cgroupsRemoved();
        leftover = fixture.jobber.stats().cgroups;
      } finally {
        fixture.cleanup();
        for (const path of extra) rmSync(path, { recursive: true, force: true });
      }
      expect(leftover).toEqual([]);
    },
    cleanup() {
      fixture.jobber.close();
      removeCgroupParent(cgroupParent);
      rmSync(home, { recursive: true, force: true });
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
  return fixture;
}

/** Host PIDs of every process whose cgroup v2 path ends in `/<parent>/<name>`. */
export function processesInCgroup(parent: string, name: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const membership = readFileSync(`/proc/${entry}/cgroup`, "utf8");
      if (
        membership.split("\n").some((line) => line.startsWith("0::") && line.endsWith(`/${parent}/${name}`))
      ) {
        pids.push(Number(entry));
      }
    } catch {
      // Exited while we looked.
    }
  }
  return pids;
}

/** Collects a follower's chunks into one buffer. */
export async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}

/** Resolves when the job's log contains `text` (event-driven, through follow). */
export async function waitForOutput(
  chunks: AsyncIterableIterator<Uint8Array>,
  text: string,
): Promise<string> {
  let seen = "";
  try {
    for (;;) {
      const next = await chunks.next();
      if (next.done) throw new Error(`job ended before printing ${JSON.stringify(text)}; it printed ${seen}`);
      seen += Buffer.from(next.value).toString("latin1");
      if (seen.includes(text)) return seen;
    }
  } finally {
    // Let go of the follower: its file and its share of the log's watcher.
    await chunks.return?.();
  }
}
