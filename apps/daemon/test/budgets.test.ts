// The daemon's own bookkeeping of what tenants hold, as pure logic: the
// shared budget of log snapshots, the per-tenant stream count, and the
// parsing of the settings that size them.
import { describe, expect, test } from "bun:test";
import { status } from "@grpc/grpc-js";
import { SnapshotBudget } from "../src/snapshot-budget";
import { TenantCounter } from "../src/tenant-counter";
import { parseCount, parseCpus, parseDuration, parseShareOrSize, parseSize } from "../src/units";

const never = new AbortController().signal;

describe("the snapshot budget", () => {
  test("snapshots that fit go at once; past the budget they wait their turn, first come first served", async () => {
    const budget = new SnapshotBudget(100, 60, 4);
    const releaseA = await budget.reserve("alice", 60, never);
    const releaseB = await budget.reserve("bob", 40, never);
    expect(budget.reservedBytes).toBe(100);
    const order: string[] = [];
    const carol = budget.reserve("carol", 50, never).then((release) => {
      order.push("carol");
      return release;
    });
    const dave = budget.reserve("dave", 10, never).then((release) => {
      order.push("dave");
      return release;
    });
    releaseB();
    // 40 free: carol (50) does not fit yet, and dave waits behind her.
    await Promise.resolve();
    expect(order).toEqual([]);
    releaseA();
    (await carol)();
    (await dave)();
    expect(order).toEqual(["carol", "dave"]);
    expect(budget.reservedBytes).toBe(0);
  });

  test("a tenant holding its share waits behind itself; the others go on", async () => {
    const budget = new SnapshotBudget(100, 60, 4);
    // Alice's first snapshot is never read: it holds her share.
    const releaseAlice = await budget.reserve("alice", 50, never);
    let aliceAgain = false;
    const alice = budget.reserve("alice", 20, never).then((release) => {
      aliceAgain = true;
      return release;
    });
    // Bob is not held up by Alice's share, nor by her waiting snapshot ahead of him.
    (await budget.reserve("bob", 50, never))();
    expect(aliceAgain).toBe(false);
    releaseAlice();
    (await alice)();
    expect(budget.reservedBytes).toBe(0);
  });

  test("a tenant may keep only so many snapshots waiting: past that, RESOURCE_EXHAUSTED at once", async () => {
    const budget = new SnapshotBudget(100, 60, 2);
    const release = await budget.reserve("alice", 60, never);
    const waiting = [budget.reserve("alice", 10, never), budget.reserve("alice", 10, never)];
    const refused = await budget.reserve("alice", 10, never).catch((error) => error);
    expect(refused).toMatchObject({ code: status.RESOURCE_EXHAUSTED });
    expect(refused.message).toContain("2 of your log snapshots are waiting for room");
    release();
    for (const each of waiting) (await each)();
  });

  test("a waiting snapshot whose client goes away leaves the queue, and those behind it move up", async () => {
    const budget = new SnapshotBudget(100, 100, 4);
    const release = await budget.reserve("alice", 90, never);
    const gone = new AbortController();
    const cancelled = budget.reserve("bob", 50, gone.signal).catch((error) => error);
    const behind = budget.reserve("carol", 10, never);
    gone.abort(new Error("client went away"));
    expect((await cancelled).message).toBe("client went away");
    (await behind)();
    release();
    expect(budget.reservedBytes).toBe(0);
  });

  test("a snapshot larger than the whole budget still goes, alone", async () => {
    const budget = new SnapshotBudget(100, 200, 4);
    (await budget.reserve("alice", 150, never))();
  });
});

describe("streams per tenant", () => {
  test("past the quota RESOURCE_EXHAUSTED names it; leaving makes room, once", () => {
    const streams = new TenantCounter("FollowJobLog streams", "tenant-streams", 2);
    const leave = streams.enter("alice");
    streams.enter("alice");
    expect(() => streams.enter("alice")).toThrow(
      "you have 2 FollowJobLog streams open, the most one tenant may (tenant-streams = 2); close one first",
    );
    streams.enter("bob");
    leave();
    leave();
    streams.enter("alice");
    expect(() => streams.enter("alice")).toThrow(/tenant-streams = 2/);
  });
});

describe("settings", () => {
  test("sizes, durations, cores, counts and shares as people write them", () => {
    expect(parseSize("--max-log", "4G")).toBe(4 * 1024 ** 3);
    expect(parseSize("--default-log", "256M")).toBe(256 * 1024 ** 2);
    expect(parseSize("--x", "1.5KiB")).toBe(1536);
    expect(parseSize("--x", "0")).toBe(0);
    expect(parseDuration("--retention", "168h")).toBe(168 * 3_600_000);
    expect(parseDuration("--retention", "0")).toBe(0);
    expect(parseDuration("--stop-grace", "500ms")).toBe(500);
    expect(parseDuration("--retention", "7d")).toBe(7 * 86_400_000);
    expect(parseCpus("--max-cpus", "0.5")).toBe(0.5);
    expect(parseCount("--tenant-jobs", "100")).toBe(100);
    expect(parseShareOrSize("--min-free", "5%")).toEqual({ fraction: 0.05 });
    expect(parseShareOrSize("--min-free", "2G")).toEqual({ bytes: 2 * 1024 ** 3 });
  });

  test("a value that does not parse names the setting and the form it wants", () => {
    expect(() => parseSize("--max-memory", "lots")).toThrow(
      '--max-memory: "lots" is not a size like 256M, 4G or 1048576',
    );
    expect(() => parseDuration("--retention", "1 week")).toThrow("--retention:");
    expect(() => parseShareOrSize("--min-free", "150%")).toThrow("more than 100%");
    expect(() => parseCount("--tenant-jobs", "-1")).toThrow("--tenant-jobs:");
  });
});
