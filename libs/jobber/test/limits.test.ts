import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseKeyedCounters } from "../src/cgroup/files";
import type { Certificate } from "../src/index";
import { collect, createFixture, type Fixture, waitForOutput } from "./fixture";

let fixture: Fixture;
let tenant: Certificate;

beforeAll(() => {
  fixture = createFixture();
  tenant = fixture.jobber.certificateFromDer(Buffer.from("limits tenant"));
});

afterAll(async () => {
  // Nothing a test started may outlive it.
  await fixture.finish();
});

/** A file of a running job's cgroup, wherever this host keeps that controller. */
function cgroupFile(controller: "cpu" | "pids" | "memory", id: number, file: string): string {
  const v2 = fixture.jobber.cgroupLayout === "v2";
  return join("/sys/fs/cgroup", v2 ? "" : controller, fixture.cgroupParent, tenant.hash(), String(id), file);
}

test("a job over its memory limit is OOM-killed and reported as such", async () => {
  // tail buffers its current line, and /dev/zero never ends one.
  const job = tenant.newJob(["tail", "/dev/zero"], { memoryBytes: 32 * 1024 * 1024 });
  await job.start();
  expect(await job.finished()).toMatchObject({ state: "oom_killed", signal: "SIGKILL" });
});

test("a pids limit stops a fork storm", async () => {
  // Unlimited, this prints "storm over" and exits 0; at 20 PIDs the shell's fork fails.
  const job = tenant.newJob(
    ["sh", "-c", "i=0; while [ $i -lt 100 ]; do sleep 1000 & i=$((i+1)); done; echo storm over"],
    { pidsMax: 20 },
  );
  await job.start();
  const output = (await collect(job.follow())).toString();
  expect(output).toMatch(/can't fork|cannot fork/i);
  expect(output).not.toContain("storm over");
  expect(await job.finished()).toMatchObject({ state: "exited", exitCode: 2 });
});

test("a CPU limit of 0.2 holds a busy loop near 20 %", async () => {
  const job = tenant.newJob(["sh", "-c", "echo spinning; while :; do :; done"], { cpus: 0.2 });
  await job.start();
  await waitForOutput(job.follow(), "spinning");
  // CPU time used over a wall-clock window: the window is the measurement, not a wait for an event.
  const usage = () => parseKeyedCounters(readFileSync(cgroupFile("cpu", job.id, "cpu.stat"), "utf8"));
  const v2 = fixture.jobber.cgroupLayout === "v2";
  const usedMicros = () =>
    v2
      ? (usage().get("usage_usec") ?? 0)
      : Number(
          readFileSync(
            join("/sys/fs/cgroup/unified", fixture.cgroupParent, tenant.hash(), String(job.id), "cpu.stat"),
            "utf8",
          ).match(/usage_usec (\d+)/)?.[1],
        );
  const startUsed = usedMicros();
  const startWall = performance.now();
  await Bun.sleep(2000);
  const share = (usedMicros() - startUsed) / ((performance.now() - startWall) * 1000);
  const throttled = usage().get("nr_throttled") ?? 0;
  await job.stop(0);
  expect(share).toBeGreaterThan(0.1);
  expect(share).toBeLessThan(0.3);
  expect(throttled).toBeGreaterThan(0);
});

test("limits in force are reported with defaults filled in", async () => {
  const job = tenant.newJob(["true"], { memoryBytes: 64 * 1024 * 1024 });
  const info = await job.start();
  expect(info.limits).toEqual({
    cpus: 1,
    memoryBytes: 64 * 1024 * 1024,
    ioReadBps: 0,
    ioWriteBps: 0,
    pidsMax: 1024,
    logBytes: 256 * 1024 * 1024,
    timeoutSeconds: 0,
  });
  await job.finished();
});

test("io limits reach the block device of the state directory", async () => {
  const job = tenant.newJob(["sh", "-c", "echo up; sleep 1000"], {
    ioReadBps: 10_000_000,
    ioWriteBps: 5_000_000,
  });
  await job.start();
  await waitForOutput(job.follow(), "up");
  const v2 = fixture.jobber.cgroupLayout === "v2";
  if (v2) {
    const ioMax = readFileSync(
      join("/sys/fs/cgroup", fixture.cgroupParent, tenant.hash(), String(job.id), "io.max"),
      "utf8",
    );
    expect(ioMax).toMatch(/rbps=10000000 wbps=5000000/);
  } else {
    const dir = join("/sys/fs/cgroup/blkio", fixture.cgroupParent, tenant.hash(), String(job.id));
    expect(readFileSync(join(dir, "blkio.throttle.read_bps_device"), "utf8")).toMatch(/^\d+:\d+ 10000000$/m);
    expect(readFileSync(join(dir, "blkio.throttle.write_bps_device"), "utf8")).toMatch(/^\d+:\d+ 5000000$/m);
  }
  await job.stop(0);
  expect(await collect(job.follow())).toEqual(Buffer.from("up\n"));
});
