// A hostile tenant with one certificate, against jobberd's ceilings: limits
// past the per-job maximums, more running jobs, processes or follow streams
// than a tenant may hold, a full state filesystem. Each is refused with the
// status and the quota's name, another tenant carries on, and the daemon
// loses nothing. Also RemoveJob and retention.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { connectJobService, type JobClient, JobStatus } from "@jobber/proto";
import {
  collect,
  type DaemonProcess,
  JOBBERD_FROM_SOURCE,
  startDaemonProcess,
  TEST_ROOT,
  tenantOf,
} from "./fixture";

const MiB = 1024 * 1024;

let daemon: DaemonProcess;

beforeAll(async () => {
  daemon = await startDaemonProcess([
    ...["--max-memory", "512M", "--max-pids", "100", "--max-cpus", "1", "--max-log", "8M"],
    ...["--default-pids", "30", "--default-memory", "64M", "--default-log", "1M"],
    ...["--tenant-jobs", "3", "--tenant-pids", "40", "--tenant-streams", "3"],
  ]);
});

afterAll(async () => {
  await daemon.cleanup();
});

/** A client with a fresh identity: a tenant of its own, so that tests do not share quotas. */
async function newTenant(name: string): Promise<{ client: JobClient; tenant: string }> {
  const home = await daemon.issueClient(name);
  const client = connectJobService({ addr: daemon.address, home });
  return { client, tenant: tenantOf(home) };
}

async function rejection(call: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await call;
  } catch (error) {
    return error as { code: number; details: string };
  }
  throw new Error("the call succeeded");
}

/** Starts a job that prints `up` and sleeps; resolves once it has printed. */
async function sleeper(client: JobClient): Promise<bigint> {
  const { job } = await client.startJob({ args: ["sh", "-c", "echo up; exec sleep 1000"] });
  const jobId = job?.id as bigint;
  await firstChunk(client, jobId);
  return jobId;
}

async function firstChunk(client: JobClient, jobId: bigint): Promise<string> {
  for await (const chunk of client.followJobLog({ jobId })) return Buffer.from(chunk).toString();
  return "";
}

/** Host PIDs of the processes in the tenant's part of the cgroup tree (all its jobs). */
function tenantProcesses(tenant: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const unified = readFileSync(`/proc/${entry}/cgroup`, "utf8")
        .split("\n")
        .find((line) => line.startsWith("0::"));
      if (unified?.includes(`/${daemon.cgroupParent}/${tenant}/`)) pids.push(Number(entry));
    } catch {
      // Exited while we looked.
    }
  }
  return pids;
}

describe("per-job maximums", () => {
  test("limits over a maximum are INVALID_ARGUMENT naming the maximum and its value", async () => {
    const { client } = await newTenant("greedy");
    // The request of the issue: every limit far past the host.
    const all = await rejection(
      client.startJob({
        args: ["true"],
        limits: { memoryBytes: 1000n * 1024n ** 3n, pidsMax: 4_000_000n, cpus: 1024 },
      }),
    );
    expect(all.code).toBe(status.INVALID_ARGUMENT);
    const cases = [
      [
        { memoryBytes: 1000n * 1024n ** 3n },
        "limit memoryBytes 1000 GiB is over the maximum per job, max-memory = 512 MiB",
      ],
      [{ pidsMax: 4_000_000n }, "limit pidsMax 4000000 is over the maximum per job, max-pids = 100"],
      [{ cpus: 1024 }, "limit cpus 1024 cores is over the maximum per job, max-cpus = 1 cores"],
      [{ logBytes: 5n * 1024n ** 3n }, "limit logBytes 5 GiB is over the maximum per job, max-log = 8 MiB"],
    ] as const;
    for (const [limits, message] of cases) {
      const refused = await rejection(client.startJob({ args: ["true"], limits }));
      expect(refused).toMatchObject({ code: status.INVALID_ARGUMENT, details: message });
    }
    // At the maximums, and with the defaults.
    const { job: atMax } = await client.startJob({
      args: ["true"],
      limits: { memoryBytes: 512n * BigInt(MiB), pidsMax: 100n, cpus: 1, logBytes: 8n * BigInt(MiB) },
    });
    expect(atMax?.limits).toMatchObject({ memoryBytes: 512n * BigInt(MiB), pidsMax: 100n, cpus: 1 });
    const { job: defaults } = await client.startJob({ args: ["true"] });
    expect(defaults?.limits).toMatchObject({
      memoryBytes: 64n * BigInt(MiB),
      pidsMax: 30n,
      logBytes: BigInt(MiB),
    });
    client.close();
  });
});

describe("settings", () => {
  test("a setting that does not parse, or a default over its maximum, stops jobberd with one line", async () => {
    const dir = mkdtempSync(join(TEST_ROOT, "jobberd-settings-"));
    try {
      const run = async (...flags: string[]) => {
        const child = Bun.spawn(
          [...JOBBERD_FROM_SOURCE, "--home", join(dir, "home"), "--state-dir", join(dir, "state"), ...flags],
          { stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } },
        );
        const [output, errors, code] = await Promise.all([
          new Response(child.stdout).text(),
          new Response(child.stderr).text(),
          child.exited,
        ]);
        return { code, output: output + errors };
      };
      const unparsable = await run("--max-memory", "lots");
      expect(unparsable.code).toBe(1);
      expect(unparsable.output).toContain('--max-memory: "lots" is not a size like 256M, 4G or 1048576');
      const inverted = await run("--default-memory", "2G", "--max-memory", "1G");
      expect(inverted.code).toBe(1);
      expect(inverted.output).toContain(
        "the default memory limit (2 GiB) is over its per-job maximum, max-memory = 1 GiB",
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("tenant quotas", () => {
  test("a tenant at --tenant-jobs is refused with RESOURCE_EXHAUSTED while another tenant still starts", async () => {
    const { client: alice } = await newTenant("alice");
    const { client: bob } = await newTenant("bob");
    const jobs = [await sleeper(alice), await sleeper(alice), await sleeper(alice)];
    const refused = await rejection(alice.startJob({ args: ["true"] }));
    expect(refused.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(refused.details).toContain("tenant-jobs = 3");
    // Another tenant is not held back by alice's quota.
    const { job } = await bob.startJob({ args: ["true"] });
    expect(job?.status).toBe(JobStatus.RUNNING);
    // One of alice's ends: she may start again.
    await alice.stopJob({ jobId: jobs.pop() });
    jobs.push(await sleeper(alice));
    for (const jobId of jobs) await alice.stopJob({ jobId });
    alice.close();
    bob.close();
  });

  test("a tenant's jobs together never hold more than --tenant-pids processes", async () => {
    const { client, tenant } = await newTenant("forker");
    // Each job tries to fork 25 sleepers: within its own limit (30), but three
    // of them would hold 81 processes. Fork failures are counted, not fatal.
    const forker = [
      "python3",
      "-c",
      [
        "import os, time",
        "n = 0",
        "for _ in range(25):",
        "    try:",
        "        pid = os.fork()",
        "    except OSError:",
        "        continue",
        "    if pid == 0:",
        "        time.sleep(1000)",
        "        os._exit(0)",
        "    n += 1",
        "print('forked', n, flush=True)",
        "time.sleep(1000)",
      ].join("\n"),
    ];
    const forked: number[] = [];
    const started: bigint[] = [];
    for (let i = 0; i < 3; i++) {
      try {
        const { job } = await client.startJob({ args: forker });
        started.push(job?.id as bigint);
        const line = await firstChunk(client, job?.id as bigint);
        forked.push(Number(/forked (\d+)/.exec(line)?.[1]));
      } catch (error) {
        // The tenant's processes are all taken: not even the job's init can be created.
        expect(error).toMatchObject({ code: status.RESOURCE_EXHAUSTED });
        expect((error as { details: string }).details).toContain("tenant-pids = 40");
      }
    }
    // The first job got all it asked for; the tenant's ceiling cut the others.
    expect(forked[0]).toBe(25);
    expect(forked.reduce((a, b) => a + b, 0)).toBeLessThan(3 * 25);
    const processes = tenantProcesses(tenant);
    expect(processes.length).toBeGreaterThan(25);
    expect(processes.length).toBeLessThanOrEqual(40);
    // Another tenant still gets processes.
    const { client: other } = await newTenant("neighbour");
    const { job } = await other.startJob({ args: forker });
    expect(await firstChunk(other, job?.id as bigint)).toBe("forked 25\n");
    await other.stopJob({ jobId: job?.id });
    for (const jobId of started) await client.stopJob({ jobId });
    client.close();
    other.close();
  });

  test("a tenant at --tenant-streams cannot open another FollowJobLog; another tenant can", async () => {
    const { client, tenant } = await newTenant("watcher");
    const jobId = await sleeper(client);
    const streams = Array.from({ length: 3 }, () => {
      const controller = new AbortController();
      const iterator = client.followJobLog({ jobId }, { signal: controller.signal })[Symbol.asyncIterator]();
      return { controller, iterator };
    });
    for (const stream of streams)
      expect(Buffer.from((await stream.iterator.next()).value).toString()).toBe("up\n");
    const refused = await rejection(collect(client.followJobLog({ jobId })));
    expect(refused.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(refused.details).toContain("tenant-streams = 3");
    // Another tenant's streams are its own.
    const { client: other } = await newTenant("other-watcher");
    const otherJob = await sleeper(other);
    await other.stopJob({ jobId: otherJob });
    // One stream closes, and its place is free once the daemon has seen it go (and logged it).
    const cancelledLine = `FollowJobLog CANCELLED tenant=${tenant.slice(0, 12)}`;
    const cancelledSoFar = daemon.output().split(cancelledLine).length - 1;
    streams[0]?.controller.abort();
    await streams[0]?.iterator.next().catch(() => {});
    await daemon.waitForLog(new RegExp(`(?:[\\s\\S]*?${cancelledLine}){${cancelledSoFar + 1}}`));
    expect(await firstChunk(client, jobId)).toBe("up\n");
    await client.stopJob({ jobId });
    for (const stream of streams.slice(1)) expect((await stream.iterator.next()).done).toBe(true);
    client.close();
    other.close();
  });
});

describe("RemoveJob", () => {
  test("a finished job is deleted; a running one is FAILED_PRECONDITION; another tenant's and unknown ones NOT_FOUND", async () => {
    const { client, tenant } = await newTenant("remover");
    const { client: other } = await newTenant("bystander");
    const { job } = await client.startJob({ args: ["echo", "to be removed"] });
    const jobId = job?.id as bigint;
    expect((await collect(client.followJobLog({ jobId }))).toString()).toBe("to be removed\n");
    const jobDir = join(daemon.stateDir, "jobs", tenant, String(jobId));
    expect(existsSync(join(jobDir, "log"))).toBe(true);

    expect(await rejection(other.removeJob({ jobId }))).toMatchObject({ code: status.NOT_FOUND });
    expect(await rejection(client.removeJob({ jobId: 999_999n }))).toMatchObject({ code: status.NOT_FOUND });
    const running = await sleeper(client);
    const busy = await rejection(client.removeJob({ jobId: running }));
    expect(busy.code).toBe(status.FAILED_PRECONDITION);
    expect(busy.details).toContain("stop it first");

    await client.removeJob({ jobId });
    expect(existsSync(jobDir)).toBe(false);
    expect(await rejection(client.getJob({ jobId }))).toMatchObject({ code: status.NOT_FOUND });
    expect((await client.getJobs()).jobs.map((each) => each.id)).not.toContain(jobId);
    // Ids are not reused: the next job gets a new one.
    const { job: next } = await client.startJob({ args: ["true"] });
    expect(next?.id).toBeGreaterThan(running);
    await client.stopJob({ jobId: running });
    client.close();
    other.close();
  });
});

describe("retention", () => {
  test("finished jobs past --retention are removed at start-up; running jobs and ids are kept", async () => {
    const own = await startDaemonProcess();
    try {
      const client = own.client();
      const { job: old } = await client.startJob({ args: ["echo", "old"] });
      await collect(client.followJobLog({ jobId: old?.id }));
      const running = await sleeper(client);
      const restarted = await own.restart(["--retention", "1ms"]);
      const again = restarted.client();
      expect(await rejection(again.getJob({ jobId: old?.id }))).toMatchObject({ code: status.NOT_FOUND });
      expect(existsSync(join(own.stateDir, "jobs", tenantOf(own.home), String(old?.id)))).toBe(false);
      expect((await again.getJob({ jobId: running })).job?.status).toBe(JobStatus.RUNNING);
      expect((await again.stopJob({ jobId: running })).job?.status).toBe(JobStatus.STOPPED);
      const { job: next } = await again.startJob({ args: ["true"] });
      expect(next?.id).toBeGreaterThan(running);
      await restarted.cleanup();
    } finally {
      await own.cleanup();
    }
  });
});

describe("--min-free", () => {
  test("StartJob is RESOURCE_EXHAUSTED while a small state filesystem is too full, and works again after RemoveJob", async () => {
    // A state directory on an 8 MiB tmpfs of its own.
    const mount = mkdtempSync(join(TEST_ROOT, "jobberd-tmpfs-"));
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", mount]);
    const stateDir = join(mount, "state");
    mkdirSync(stateDir, { mode: 0o700 });
    let own: DaemonProcess | undefined;
    try {
      own = await startDaemonProcess(
        ["--min-free", "50%", "--default-log", "6M"],
        undefined,
        undefined,
        stateDir,
      );
      const client = own.client();
      // 5 MiB of log leaves less than half of the 8 MiB free.
      const { job: big } = await client.startJob({ args: ["head", "-c", String(5 * MiB), "/dev/zero"] });
      expect((await collect(client.followJobLog({ jobId: big?.id }))).length).toBe(5 * MiB);
      const refused = await rejection(client.startJob({ args: ["true"] }));
      expect(refused.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(refused.details).toContain("min-free = 50%");
      // Nothing was lost meanwhile, and removing the big job makes room.
      expect((await client.getJob({ jobId: big?.id })).job?.status).toBe(JobStatus.EXITED);
      await client.removeJob({ jobId: big?.id });
      const { job } = await client.startJob({ args: ["true"] });
      expect(job?.id).toBeGreaterThan(big?.id as bigint);
      expect(own.process.exitCode).toBeNull();
    } finally {
      await own?.cleanup();
      execFileSync("umount", [mount]);
      rmdirSync(mount);
    }
  });
});
