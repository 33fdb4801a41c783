// Faults provoked for real: the daemon killed with SIGKILL mid-stream, jobs
// that misbehave, directories an attacker could have prepared.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  watch,
} from "node:fs";
import { join } from "node:path";
import { type JobClient, JobStatus } from "@jobber/proto";
import { removeCgroupParent } from "../../../test-support/cgroup-cleanup";
import { collect, type DaemonProcess, startDaemonProcess, TEST_ROOT, tenantOf } from "./fixture";

const MAIN = join(import.meta.dir, "../src/main.ts");

/** The job's cgroup v2 `cgroup.events`, on a hybrid or a unified host. */
function eventsFile(daemon: DaemonProcess, id: bigint): string {
  const hybrid = existsSync("/sys/fs/cgroup/unified/cgroup.controllers");
  const tenant = tenantOf(daemon.home);
  return join(
    "/sys/fs/cgroup",
    hybrid ? "unified" : "",
    daemon.cgroupParent,
    tenant,
    String(id),
    "cgroup.events",
  );
}

/** Resolves when the job's cgroup is empty, watching it directly: no daemon needed. */
function cgroupEmptied(path: string): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (!existsSync(path) || readFileSync(path, "utf8").includes("populated 0")) {
        watcher.close();
        resolve();
      }
    };
    const watcher = watch(path, check);
    check();
  });
}

/**
 * Resolves once the job's cgroup is gone. It goes a moment after the job is
 * reported over (the kernel tears the namespaces down first): watched, not
 * polled; a daemon that never removed it fails the test by its timeout.
 */
function cgroupRemoved(daemon: DaemonProcess, id: bigint): Promise<void> {
  const dir = join(eventsFile(daemon, id), "..");
  return new Promise((resolve) => {
    let watcher: ReturnType<typeof watch> | undefined;
    const check = () => {
      if (existsSync(dir)) return;
      watcher?.close();
      resolve();
    };
    try {
      // The tenant's cgroup, which goes too after its last job.
      watcher = watch(join(dir, ".."), check);
      watcher.on("error", check);
    } catch {
      // The tenant's cgroup is gone already, and the job's with it.
    }
    check();
  });
}

describe("daemon restart", () => {
  test("after SIGKILL mid-stream: jobs are adopted, nothing is lost or duplicated, exits are real", async () => {
    const first = await startDaemonProcess();
    let second: DaemonProcess | undefined;
    try {
      const client = first.client();
      const lines = Array.from({ length: 40 }, (_, i) => `line ${i}\n`).join("");
      const { job: writer } = await client.startJob({
        args: ["sh", "-c", "i=0; while [ $i -lt 40 ]; do echo line $i; i=$((i+1)); sleep 0.02; done"],
      });
      const { job: ender } = await client.startJob({
        args: ["sh", "-c", "read x < /proc/self/fd/0; sleep 0.2; exit 7"],
      });
      const { job: sleeper } = await client.startJob({ args: ["sleep", "1000"] });
      const writerId = writer?.id as bigint;

      // A follower is streaming when the daemon dies.
      const received: Buffer[] = [];
      const follower = (async () => {
        for await (const chunk of client.followJobLog({ jobId: writerId })) {
          received.push(Buffer.from(chunk));
          if (Buffer.concat(received).includes("line 3\n")) first.process.kill("SIGKILL");
        }
      })();
      expect((await follower.catch((error) => error)).code).toBe(14); // UNAVAILABLE
      await first.process.exited;

      // The job ends while no daemon is there to see it.
      await cgroupEmptied(eventsFile(first, ender?.id as bigint));

      second = await first.restart();
      const again = second.client();
      expect((await again.getJob({ jobId: ender?.id })).job).toMatchObject({
        status: JobStatus.EXITED,
        exitCode: 7,
      });
      await cgroupRemoved(second, ender?.id as bigint);
      // Resume where the dead stream stopped: together, every byte exactly once.
      const offset = BigInt(Buffer.concat(received).length);
      const rest = await collect(again.followJobLog({ jobId: writerId, offset }));
      expect(Buffer.concat([...received, rest]).toString()).toBe(lines);
      expect((await collect(again.followJobLog({ jobId: writerId }))).toString()).toBe(lines);
      expect((await again.getJob({ jobId: writerId })).job?.status).toBe(JobStatus.EXITED);
      // The adopted sleeper can still be stopped.
      expect((await again.stopJob({ jobId: sleeper?.id })).job?.status).toBe(JobStatus.STOPPED);
      await cgroupRemoved(second, sleeper?.id as bigint);
      // And ids go on from where they were.
      const { job: next } = await again.startJob({ args: ["true"] });
      expect(next?.id).toBe((sleeper?.id as bigint) + 1n);
    } finally {
      await second?.cleanup();
      await first.cleanup();
    }
  });
});

describe("job faults", () => {
  let daemon: DaemonProcess;
  let client: JobClient;

  beforeAll(async () => {
    daemon = await startDaemonProcess();
    client = daemon.client();
  });

  afterAll(async () => {
    await daemon.cleanup();
  });

  test("OOM, a fork storm and a job that ignores SIGTERM each end right, and leave no cgroup", async () => {
    const { job: oom } = await client.startJob({
      args: ["tail", "/dev/zero"],
      limits: { memoryBytes: 32n << 20n },
    });
    const { job: storm } = await client.startJob({
      args: ["sh", "-c", "while :; do sleep 1000 & done"],
      limits: { pidsMax: 16n },
    });
    const { job: stubborn } = await client.startJob({
      args: ["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"],
    });
    await collect(client.followJobLog({ jobId: oom?.id }));
    expect((await client.getJob({ jobId: oom?.id })).job?.status).toBe(JobStatus.OOM_KILLED);
    await collect(client.followJobLog({ jobId: storm?.id }));
    expect((await client.getJob({ jobId: storm?.id })).job?.status).toBe(JobStatus.EXITED);
    expect(Buffer.from((await client.getJobLog({ jobId: storm?.id })).log).toString()).toMatch(/fork/i);
    // Killed after the 1 s grace period the test daemon has.
    const stopped = (await client.stopJob({ jobId: stubborn?.id })).job;
    expect(stopped).toMatchObject({ status: JobStatus.STOPPED, signal: "SIGKILL" });
    for (const job of [oom, storm, stubborn]) await cgroupRemoved(daemon, job?.id as bigint);
  });

  test("a job that closes its output and keeps running is followed until it really ends", async () => {
    const { job } = await client.startJob({
      args: ["sh", "-c", "echo bye; exec >&- 2>&-; sleep 0.3; exit 4"],
    });
    const output = await collect(client.followJobLog({ jobId: job?.id }));
    expect(output.toString()).toBe("bye\n");
    // The stream ended with the job, not when its stdout closed.
    expect((await client.getJob({ jobId: job?.id })).job).toMatchObject({ finished: true, exitCode: 4 });
  });

  test("a job writing 1 GiB fast: the daemon keeps answering, and every byte is there", async () => {
    const size = 1024 * 1024 * 1024;
    const { job } = await client.startJob({
      args: ["head", "-c", String(size), "/dev/zero"],
      limits: { logBytes: BigInt(size) },
    });
    const latencies: number[] = [];
    let finished = false;
    const ended = collect(client.followJobLog({ jobId: job?.id, offset: BigInt(size) })).then(() => {
      finished = true;
    });
    while (!finished) {
      const started = performance.now();
      await client.getJobs();
      latencies.push(performance.now() - started);
      await Promise.race([ended, Bun.sleep(20)]);
    }
    latencies.sort((a, b) => a - b);
    console.log(
      `[figures] GetJobs while a job writes 1 GiB: ${latencies.length} calls, median ${latencies[latencies.length >> 1]?.toFixed(1)} ms, max ${latencies.at(-1)?.toFixed(1)} ms`,
    );
    expect(latencies.length).toBeGreaterThan(0);
    expect((await client.getJob({ jobId: job?.id })).job).toMatchObject({
      status: JobStatus.EXITED,
      exitCode: 0,
    });
    const tenant = readdirSync(join(daemon.stateDir, "jobs"))[0] as string;
    expect(statSync(join(daemon.stateDir, "jobs", tenant, String(job?.id), "log")).size).toBe(size);
    await cgroupRemoved(daemon, job?.id as bigint);
    rmSync(join(daemon.stateDir, "jobs", tenant, String(job?.id), "log"));
  });
});

describe("state directory safety", () => {
  const root = mkdtempSync(join(TEST_ROOT, "unsafe-"));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  function refusal(stateDir: string): { exitCode: number; message: string } {
    const home = mkdtempSync(join(root, "home-"));
    const run = Bun.spawnSync(
      ["bun", MAIN, "--listen", "127.0.0.1:0", "--home", home, "--state-dir", stateDir],
      {
        env: { ...process.env, NO_COLOR: "1" },
      },
    );
    return { exitCode: run.exitCode, message: `${run.stdout}${run.stderr}` };
  }

  test("a state directory that is a symlink is refused", () => {
    const real = join(root, "real");
    mkdirSync(real, { mode: 0o700 });
    symlinkSync(real, join(root, "link"));
    const { exitCode, message } = refusal(join(root, "link"));
    expect(exitCode).toBe(1);
    expect(message).toContain("is a symbolic link");
  });

  test("a state directory writable by others is refused", () => {
    const open = join(root, "open");
    mkdirSync(open);
    chmodSync(open, 0o777);
    const { exitCode, message } = refusal(open);
    expect(exitCode).toBe(1);
    expect(message).toContain("writable by group or others (mode 777)");
  });

  test("a state directory owned by another user is refused", () => {
    const theirs = join(root, "theirs");
    mkdirSync(theirs, { mode: 0o700 });
    chownSync(theirs, 65534, 65534);
    const { exitCode, message } = refusal(theirs);
    expect(exitCode).toBe(1);
    expect(message).toContain("owned by uid 65534");
  });

  test("a missing state directory is created 0700", async () => {
    const fresh = join(root, "fresh", "state");
    const cgroupParent = `jobber-test-${process.pid}-fresh`;
    const daemon = Bun.spawn(
      [
        "bun",
        MAIN,
        ...["--listen", "127.0.0.1:0", "--home", join(root, "fresh-home"), "--state-dir", fresh],
        ...["--cgroup-parent", cgroupParent],
      ],
      { stdout: "pipe", stderr: "pipe" },
    );
    try {
      for await (const chunk of daemon.stderr)
        if (Buffer.from(chunk).toString().includes("listening on")) break;
      expect(statSync(fresh).mode & 0o777).toBe(0o700);
      expect(statSync(join(fresh, "jobs")).mode & 0o777).toBe(0o700);
    } finally {
      daemon.kill("SIGKILL");
      await daemon.exited;
      removeCgroupParent(cgroupParent);
    }
  });
});
