// What one tenant may hold, through the library: the tenant level of the
// cgroup tree, the running-jobs quota, removal of finished jobs, retention
// and the free-space floor.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Certificate } from "../src/index";
import { collect, createFixture, type Fixture, waitForOutput } from "./fixture";

let fixture: Fixture;
let alice: Certificate;
let bob: Certificate;

function tenants(jobber = fixture.jobber) {
  alice = jobber.certificateFromDer(Buffer.from("alice"));
  bob = jobber.certificateFromDer(Buffer.from("bob"));
}

beforeAll(() => {
  fixture = createFixture({
    tenantQuotas: { jobs: 3, pidsMax: 200, cpus: 1.5, memoryBytes: 512 * 1024 ** 2 },
  });
  tenants();
});

afterAll(async () => {
  // Nothing a test started may outlive it.
  await fixture.finish();
});

/** Jobs a test leaves running are stopped after it, so that each test starts from no running job. */
const running: { stop(graceMs?: number): Promise<unknown>; id: number }[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((job) => job.stop(0).catch(() => {})));
});

async function start(tenant: Certificate, argv: string[]) {
  const job = tenant.newJob(argv);
  await job.start();
  return job;
}

async function sleeper(tenant: Certificate) {
  const job = await start(tenant, ["sh", "-c", "echo up; exec sleep 1000"]);
  running.push(job);
  await waitForOutput(job.follow(), "up");
  return job;
}

/** The tenant's directory in the lifecycle tree (v2), and where its pids limit lives. */
function tenantDir(tenant: Certificate): { lifecycle: string; pids: string } {
  const v2 = fixture.jobber.cgroupLayout === "v2";
  const lifecycle = join("/sys/fs/cgroup", v2 ? "" : "unified", fixture.cgroupParent, tenant.hash());
  return { lifecycle, pids: join("/sys/fs/cgroup", v2 ? "" : "pids", fixture.cgroupParent, tenant.hash()) };
}

describe("the tenant level of the cgroup tree", () => {
  test("a tenant's jobs live under its own cgroup, which carries its quotas and goes with its last job", async () => {
    const first = await sleeper(alice);
    const second = await sleeper(alice);
    const dir = tenantDir(alice);
    expect(existsSync(join(dir.lifecycle, String(first.id)))).toBe(true);
    expect(existsSync(join(dir.lifecycle, String(second.id)))).toBe(true);
    expect(readFileSync(join(dir.pids, "pids.max"), "utf8").trim()).toBe("200");
    expect(fixture.jobber.stats().cgroups.sort()).toEqual(
      [alice.hash(), `${alice.hash()}/${first.id}`, `${alice.hash()}/${second.id}`].sort(),
    );
    await first.stop(0);
    await fixture.jobber.cgroupsRemoved();
    // One job left: the tenant's cgroup stays.
    expect(existsSync(dir.lifecycle)).toBe(true);
    await second.stop(0);
    // The job's cgroup goes a moment after the job, and the tenant's with it.
    await fixture.jobber.cgroupsRemoved();
    expect(existsSync(dir.lifecycle)).toBe(false);
    expect(existsSync(dir.pids)).toBe(false);
    expect(fixture.jobber.stats().cgroups).toEqual([]);
  });

  test("a job starting just as the tenant's last one is cleaned up still finds its tenant's cgroup", async () => {
    // Each start lands right after the previous job's cleanup removed the
    // tenant's cgroup, or in the middle of it: all must start and end well.
    for (let round = 0; round < 20; round++) {
      const job = await start(alice, ["true"]);
      const next = job.finished().then(() => start(alice, ["true"]));
      const meanwhile = start(alice, ["true"]);
      const jobs = [job, await next, await meanwhile];
      for (const each of jobs) expect(await each.finished()).toMatchObject({ state: "exited", exitCode: 0 });
    }
    await fixture.jobber.cgroupsRemoved();
    expect(fixture.jobber.stats().cgroups).toEqual([]);
  });

  test("the tenant's CPU quota is the ceiling of all its jobs together", async () => {
    await sleeper(alice);
    const v2 = fixture.jobber.cgroupLayout === "v2";
    const cpu = join("/sys/fs/cgroup", v2 ? "" : "cpu", fixture.cgroupParent, alice.hash());
    if (v2) expect(readFileSync(join(cpu, "cpu.max"), "utf8").trim()).toBe("150000 100000");
    else expect(readFileSync(join(cpu, "cpu.cfs_quota_us"), "utf8").trim()).toBe("150000");
    const memory = join("/sys/fs/cgroup", v2 ? "" : "memory", fixture.cgroupParent, alice.hash());
    const memoryFile = v2 ? "memory.max" : "memory.limit_in_bytes";
    expect(readFileSync(join(memory, memoryFile), "utf8").trim()).toBe(String(512 * 1024 ** 2));
    // A job asking for more cores than its tenant has starts (with the tenant's ceiling over it).
    const greedy = alice.newJob(["true"], { cpus: 2 });
    await greedy.start();
    expect(await greedy.finished()).toMatchObject({ state: "exited" });
  });
});

describe("tenant-bound handles", () => {
  test("a certificate, its jobs and the Jobber hold nothing that reaches another tenant's jobs", async () => {
    const bobs = await start(bob, ["true"]);
    const alices = await start(alice, ["true"]);
    await Promise.all([bobs.finished(), alices.finished()]);
    // The attack: look behind the handles for the runtime, whose methods take any tenant's name.
    for (const handle of [alice, alices, fixture.jobber]) {
      const fields = handle as unknown as Record<string, unknown>;
      expect(Reflect.ownKeys(handle)).toEqual([]);
      expect([fields.host, fields.runtime, fields.record, fields.tenant]).toEqual([
        undefined,
        undefined,
        undefined,
        undefined,
      ]);
    }
    // What alice's certificate offers is the public API, and none of it takes a tenant.
    expect(Object.getOwnPropertyNames(Object.getPrototypeOf(alice)).sort()).toEqual([
      "bytes",
      "constructor",
      "getJob",
      "getJobs",
      "hash",
      "newJob",
    ]);
    expect((await alice.getJobs()).map((job) => job.id)).not.toContain(bobs.id);
    await expect(alice.getJob(bobs.id)).rejects.toThrow(`job ${bobs.id} not found`);
    await alices.remove();
    await bobs.remove();
  });
});

describe("running jobs per tenant", () => {
  test("a tenant at its quota is refused with RESOURCE_EXHAUSTED while another tenant still starts", async () => {
    for (let i = 0; i < 3; i++) await sleeper(alice);
    const refused = start(alice, ["true"]);
    await expect(refused).rejects.toMatchObject({
      code: "RESOURCE_EXHAUSTED",
      message: expect.stringContaining("tenant-jobs = 3"),
    });
    const other = await start(bob, ["true"]);
    expect(await other.finished()).toMatchObject({ state: "exited", exitCode: 0 });
    // A job that ends makes room.
    await running.shift()?.stop(0);
    const again = await start(alice, ["true"]);
    expect(await again.finished()).toMatchObject({ state: "exited", exitCode: 0 });
  });
});

describe("removing jobs", () => {
  test("a finished job is deleted, directory and log; a running one is refused; another tenant's is not found", async () => {
    const done = await start(alice, ["echo", "bye"]);
    await done.finished();
    const dir = join(fixture.stateDir, "jobs", alice.hash(), String(done.id));
    expect(existsSync(join(dir, "log"))).toBe(true);

    await expect(bob.getJob(done.id).then((job) => job.remove())).rejects.toMatchObject({
      code: "NOT_FOUND",
    });
    const live = await sleeper(alice);
    await expect(live.remove()).rejects.toMatchObject({
      code: "FAILED_PRECONDITION",
      message: expect.stringContaining("stop it first"),
    });

    await done.remove();
    expect(existsSync(dir)).toBe(false);
    await expect(alice.getJob(done.id)).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(done.remove()).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect((await alice.getJobs()).map((job) => job.id)).not.toContain(done.id);
  });

  test("a follower reading a job that is removed gets the whole log and ends", async () => {
    const job = await start(alice, ["head", "-c", String(4 * 1024 * 1024), "/dev/zero"]);
    await job.finished();
    const follower = job.follow();
    const first = await follower.next();
    await job.remove();
    const rest = await collect(follower);
    expect((first.value as Uint8Array).length + rest.length).toBe(4 * 1024 * 1024);
  });

  test("ids are never reused after a removal, across a restart", async () => {
    const job = await start(alice, ["true"]);
    await job.finished();
    await job.remove();
    fixture.jobber.close();
    tenants(fixture.reopen());
    const next = await start(alice, ["true"]);
    expect(next.id).toBeGreaterThan(job.id);
    await next.finished();
  });
});

describe("retention", () => {
  test("finished jobs older than the retention are removed at start-up; running jobs stay", async () => {
    const old = await start(alice, ["echo", "old"]);
    await old.finished();
    const live = await sleeper(alice);
    fixture.jobber.close();
    // Reopened with a retention the finished job is already past.
    const reopened = fixture.reopen({ retentionMs: 1 });
    tenants(reopened);
    await expect(alice.getJob(old.id)).rejects.toMatchObject({ code: "NOT_FOUND" });
    const adopted = await alice.getJob(live.id);
    expect((await adopted.status()).state).toBe("running");
    running.splice(0, running.length, adopted);
  });
});

describe("free space", () => {
  test("StartJob is refused while the state filesystem has less free than min-free", async () => {
    fixture.jobber.close();
    // More than any disk here has free.
    tenants(fixture.reopen({ minFree: { bytes: 2 ** 60 } }));
    await expect(start(alice, ["true"])).rejects.toMatchObject({
      code: "RESOURCE_EXHAUSTED",
      message: expect.stringContaining("min-free = 1024 PiB"),
    });
    fixture.jobber.close();
    tenants(fixture.reopen({}));
    expect(await (await start(alice, ["true"])).finished()).toMatchObject({ state: "exited" });
  });
});
