// Pure functions: the cgroup file formats of both layouts, command lines, statuses.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  parseKeyedCounters,
  v1LimitFiles,
  v1TenantFiles,
  v2LimitFiles,
  withinTenantCpus,
} from "../src/cgroup/files";
import { V2Driver } from "../src/cgroup/v2";
import { joinCommandLine, splitCommandLine } from "../src/command-line";
import { formatBytes } from "../src/format-bytes";
import { DEFAULT_LIMITS, limitPolicy, resolveLimits } from "../src/limits";
import { retentionPeriodMs } from "../src/retention";
import { decideStatus, parseExitRecord } from "../src/status";

const limits = {
  cpus: 0.5,
  memoryBytes: 256 * 1024 * 1024,
  ioReadBps: 10_000_000,
  ioWriteBps: 0,
  pidsMax: 64,
  logBytes: 1024,
  timeoutSeconds: 0,
};

describe("cgroup v2 files", () => {
  test("limits become cpu.max, memory.max without swap, io.max per device, pids.max", () => {
    expect(v2LimitFiles(limits, ["254:0", "8:16"])).toEqual([
      ["cpu.max", "50000 100000"],
      ["memory.max", "268435456"],
      ["memory.swap.max", "0"],
      ["io.max", "254:0 rbps=10000000 wbps=max"],
      ["io.max", "8:16 rbps=10000000 wbps=max"],
      ["pids.max", "64"],
    ]);
  });

  test("0 means unlimited", () => {
    const none = {
      cpus: 0,
      memoryBytes: 0,
      ioReadBps: 0,
      ioWriteBps: 0,
      pidsMax: 0,
      logBytes: 0,
      timeoutSeconds: 0,
    };
    expect(v2LimitFiles(none, [])).toEqual([
      ["cpu.max", "max 100000"],
      ["memory.max", "max"],
      ["memory.swap.max", "max"],
      ["pids.max", "max"],
    ]);
  });

  test("the v2 driver enables controllers and writes tenant and job limits into a unified tree", async () => {
    // A stand-in tree: the files a unified host has, as plain files.
    const root = mkdtempSync(join(tmpdir(), "jobber-v2-"));
    try {
      writeFileSync(join(root, "cgroup.controllers"), "cpuset cpu io memory hugetlb pids rdma misc\n");
      writeFileSync(join(root, "cgroup.subtree_control"), "");
      const tenantLimits = { cpus: 2, memoryBytes: 4 * 1024 ** 3, pidsMax: 500 };
      const driver = new V2Driver(root, "jobber", ["254:0"], tenantLimits, () => {});
      expect(readFileSync(join(root, "cgroup.subtree_control"), "utf8")).toBe("+cpu +memory +io +pids");
      expect(readFileSync(join(root, "jobber", "cgroup.subtree_control"), "utf8")).toBe(
        "+cpu +memory +io +pids",
      );
      const cgroup = driver.create("t1", "7", limits);
      // The tenant level: totals over its jobs, and the controllers handed on to them.
      const tenantFile = (file: string) => readFileSync(join(root, "jobber", "t1", file), "utf8");
      expect(tenantFile("cgroup.subtree_control")).toBe("+cpu +memory +io +pids");
      expect(tenantFile("cpu.max")).toBe("200000 100000");
      expect(tenantFile("memory.max")).toBe(String(4 * 1024 ** 3));
      expect(tenantFile("pids.max")).toBe("500");
      const read = (file: string) => readFileSync(join(root, "jobber", "t1", "7", file), "utf8");
      expect(read("cpu.max")).toBe("50000 100000");
      expect(read("memory.max")).toBe("268435456");
      expect(read("memory.swap.max")).toBe("0");
      expect(read("io.max")).toBe("254:0 rbps=10000000 wbps=max");
      expect(read("pids.max")).toBe("64");
      expect(cgroup.eventsPath).toBe(join(root, "jobber", "t1", "7", "cgroup.events"));
      expect(cgroup.name).toBe("t1/7");
      expect(driver.list().sort()).toEqual(["t1", "t1/7"]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe("cgroup v1 files", () => {
  test("limits become CFS quota, memory and memsw limits, blkio throttles, pids.max", () => {
    expect(v1LimitFiles(limits, ["254:0"], true)).toEqual([
      ["cpu", "cpu.cfs_period_us", "100000"],
      ["cpu", "cpu.cfs_quota_us", "50000"],
      ["memory", "memory.limit_in_bytes", "268435456"],
      ["memory", "memory.memsw.limit_in_bytes", "268435456"],
      ["memory", "memory.swappiness", "0"],
      ["blkio", "blkio.throttle.read_bps_device", "254:0 10000000"],
      ["blkio", "blkio.throttle.write_bps_device", "254:0 0"],
      ["pids", "pids.max", "64"],
    ]);
  });

  test("without swap accounting there is no memsw file to write", () => {
    expect(v1LimitFiles(limits, [], false).map(([, file]) => file)).not.toContain(
      "memory.memsw.limit_in_bytes",
    );
  });

  test("counters files parse", () => {
    expect(parseKeyedCounters("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n").get("oom_kill")).toBe(3);
    expect(parseKeyedCounters("populated 0\nfrozen 0\n").get("populated")).toBe(0);
  });
});

describe("command lines", () => {
  test("POSIX quoting splits without expansion", () => {
    expect(splitCommandLine(`echo "a b" 'c d' e\\ f $HOME "x\\"y" '' *`)).toEqual([
      "echo",
      "a b",
      "c d",
      "e f",
      "$HOME",
      'x"y',
      "",
      "*",
    ]);
  });

  test("unterminated quotes are refused", () => {
    expect(() => splitCommandLine(`echo 'oops`)).toThrow(/unterminated single quote/);
    expect(() => splitCommandLine(`echo "oops`)).toThrow(/unterminated double quote/);
  });

  test("join quotes what needs it and round-trips", () => {
    const argv = ["sh", "-c", "echo 'hi' $x", "plain", ""];
    expect(joinCommandLine(argv)).toBe(`sh -c 'echo '\\''hi'\\'' $x' plain ''`);
    expect(splitCommandLine(joinCommandLine(argv))).toEqual(argv);
  });
});

describe("limits", () => {
  const GiB = 1024 ** 3;
  const policy = limitPolicy({}, { cpus: 4, memoryBytes: 8 * GiB, pidsMax: 32768, logBytes: 4 * GiB });

  test("zero takes the default", () => {
    expect(resolveLimits({ cpus: 0, pidsMax: 10 }, policy)).toEqual({ ...DEFAULT_LIMITS, pidsMax: 10 });
  });

  test("a limit over its maximum is INVALID_ARGUMENT naming the maximum and its value", () => {
    const refusal = (limits: object) => {
      try {
        resolveLimits(limits, policy);
      } catch (error) {
        return error as { code: string; message: string };
      }
      throw new Error("accepted");
    };
    expect(refusal({ memoryBytes: 1000 * GiB })).toMatchObject({
      code: "INVALID_ARGUMENT",
      message: "limit memoryBytes 1000 GiB is over the maximum per job, max-memory = 8 GiB",
    });
    expect(refusal({ pidsMax: 4_000_000 }).message).toContain("max-pids = 32768");
    expect(refusal({ cpus: 1024 }).message).toContain("max-cpus = 4 cores");
    expect(refusal({ logBytes: 5 * GiB }).message).toContain("max-log = 4 GiB");
    // At the maximum is fine.
    expect(resolveLimits({ memoryBytes: 8 * GiB, cpus: 4 }, policy).memoryBytes).toBe(8 * GiB);
  });

  test("a default over its maximum, or unlimited under one, is a configuration error", () => {
    expect(() => limitPolicy({ memoryBytes: 2 * GiB }, { memoryBytes: GiB })).toThrow(
      "the default memory limit (2 GiB) is over its per-job maximum, max-memory = 1 GiB",
    );
    expect(() => limitPolicy({ pidsMax: 0 }, { pidsMax: 100 })).toThrow(/max-pids = 100/);
    // No ceiling configured: the host's, raised to the default where the host is smaller.
    expect(limitPolicy({ memoryBytes: 1024 * GiB }).maximums.memoryBytes).toBe(1024 * GiB);
  });

  test("sizes read as people write them", () => {
    expect(formatBytes(512)).toBe("512 bytes");
    expect(formatBytes(1024 * 1024)).toBe("1 MiB");
    expect(formatBytes(1.5 * GiB)).toBe("1.5 GiB");
  });

  test("retention is checked at least hourly, at most once a minute", () => {
    expect(retentionPeriodMs(1000)).toBe(60_000);
    expect(retentionPeriodMs(168 * 3600_000)).toBe(3600_000);
    expect(retentionPeriodMs(30 * 60_000)).toBe(30 * 60_000);
  });
});

describe("tenant cgroup files", () => {
  const tenant = { cpus: 2, memoryBytes: 4 * 1024 ** 3, pidsMax: 8192 };
  test("the tenant's totals become cpu, memory and pids files in both layouts", () => {
    expect(v1TenantFiles(tenant)).toEqual([
      ["cpu", "cpu.cfs_period_us", "100000"],
      ["cpu", "cpu.cfs_quota_us", "200000"],
      ["memory", "memory.limit_in_bytes", String(4 * 1024 ** 3)],
      ["pids", "pids.max", "8192"],
    ]);
    expect(v1TenantFiles({ cpus: 0, memoryBytes: 0, pidsMax: 0 }).map(([, , content]) => content)).toEqual([
      "100000",
      "-1",
      "-1",
      "max",
    ]);
  });

  test("on v1 a job asking for more cores than its tenant has gets the tenant's (v1 refuses more)", () => {
    expect(withinTenantCpus({ ...limits, cpus: 8 }, tenant).cpus).toBe(2);
    expect(withinTenantCpus({ ...limits, cpus: 0.5 }, tenant).cpus).toBe(0.5);
    expect(withinTenantCpus({ ...limits, cpus: 8 }, { ...tenant, cpus: 0 }).cpus).toBe(8);
  });
});

describe("status", () => {
  const at = "2026-01-01T00:00:00.000Z";
  test("init's exit record parses", () => {
    expect(parseExitRecord("exited 3\n")).toEqual({ kind: "exited", code: 3 });
    expect(parseExitRecord("signaled 9\n")).toEqual({ kind: "signaled", signal: 9 });
    expect(parseExitRecord("failed exec 13\n")).toEqual({ kind: "failed", errno: 13, stage: "exec" });
    expect(parseExitRecord("failed mount-proc 1\n")).toEqual({
      kind: "failed",
      errno: 1,
      stage: "mount-proc",
    });
    expect(parseExitRecord(undefined)).toBeUndefined();
  });

  test("no exit record means init itself was killed", () => {
    expect(decideStatus({ exit: undefined, stopRequested: false, oomKills: 0, finishedAt: at })).toEqual({
      state: "killed",
      signal: "SIGKILL",
      finishedAt: at,
    });
    expect(decideStatus({ exit: undefined, stopRequested: false, oomKills: 1, finishedAt: at }).state).toBe(
      "oom_killed",
    );
  });

  test("an OOM kill the command survived does not make the job OOM-killed", () => {
    const exit = { kind: "exited" as const, code: 0 };
    expect(decideStatus({ exit, stopRequested: false, oomKills: 1, finishedAt: at }).state).toBe("exited");
  });
});
