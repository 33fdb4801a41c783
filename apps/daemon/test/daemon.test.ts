// jobberd end to end: a real daemon process, real mTLS, the generated client.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { connectJobService, type JobClient, JobStatus } from "@jobber/proto";
import { rootRefusal } from "../src/root";
import { selfSignedClient } from "./certs";
import {
  codeOf,
  collect,
  type DaemonProcess,
  fdsOpenOn,
  inotifyWatches,
  startDaemonProcess,
} from "./fixture";

let daemon: DaemonProcess;
let client: JobClient;

beforeAll(async () => {
  daemon = await startDaemonProcess();
  client = daemon.client();
});

afterAll(async () => {
  await daemon.cleanup();
});

async function waitForEnd(id: bigint) {
  // FollowJobLog ends when the job has ended and all output is sent.
  await collect(client.followJobLog({ jobId: id }));
  return (await client.getJob({ jobId: id })).job;
}

describe("bootstrap", () => {
  test("an empty home gets a CA, a server certificate and a first client in the pool, keys 0600", () => {
    for (const file of [
      "ca.crt",
      "ca.key",
      "server.crt",
      "server.key",
      "client.crt",
      "client.key",
      "pool/client.crt",
    ]) {
      expect(existsSync(join(daemon.home, file))).toBe(true);
    }
    for (const key of ["ca.key", "server.key", "client.key"]) {
      expect(statSync(join(daemon.home, key)).mode & 0o777).toBe(0o600);
    }
    expect(statSync(daemon.home).mode & 0o777).toBe(0o700);
  });

  test("a client built from the bootstrapped files is let in", async () => {
    expect((await client.getJobs()).jobs).toBeArray();
  });
});

describe("RPCs", () => {
  test("StartJob runs argv; GetJob reports it exited with its code", async () => {
    const { job } = await client.startJob({ args: ["sh", "-c", "echo hello; exit 3"] });
    // StartJob answers once the command runs; a command this short may be over by then.
    expect([JobStatus.RUNNING, JobStatus.EXITED]).toContain(job?.status as JobStatus);
    expect(job?.command).toBe("sh -c 'echo hello; exit 3'");
    expect(job?.args).toEqual(["sh", "-c", "echo hello; exit 3"]);
    expect(Date.parse(job?.createdAt ?? "")).not.toBeNaN();
    const done = await waitForEnd(job?.id as bigint);
    expect(done).toMatchObject({ status: JobStatus.EXITED, finished: true, exitCode: 3 });
    expect(Date.parse(done?.finishedAt ?? "")).not.toBeNaN();
  });

  test("a bare command is split by POSIX quoting, with no shell", async () => {
    const { job } = await client.startJob({ command: `echo "a  b" '$HOME' *` });
    expect(job?.args).toEqual(["echo", "a  b", "$HOME", "*"]);
    await waitForEnd(job?.id as bigint);
    expect(Buffer.from((await client.getJobLog({ jobId: job?.id })).log).toString()).toBe("a  b $HOME *\n");
  });

  test("limits are applied and reported with defaults filled in", async () => {
    const { job } = await client.startJob({ args: ["true"], limits: { memoryBytes: 64n << 20n, cpus: 0.5 } });
    expect(job?.limits).toMatchObject({ cpus: 0.5, memoryBytes: 64n << 20n, pidsMax: 1024n });
  });

  test("GetJobs lists the caller's jobs", async () => {
    const { job } = await client.startJob({ args: ["true"] });
    const ids = (await client.getJobs()).jobs.map((j) => j.id);
    expect(ids).toContain(job?.id as bigint);
  });

  test("GetJobLog returns binary output byte for byte", async () => {
    const { job } = await client.startJob({ args: ["printf", "\\000\\377\\200end"] });
    await waitForEnd(job?.id as bigint);
    const { log } = await client.getJobLog({ jobId: job?.id });
    expect(Buffer.from(log)).toEqual(Buffer.from([0, 0xff, 0x80, ...Buffer.from("end")]));
  });

  test("GetJobLog carries logs up to 64 MiB; a bigger one is refused with a pointer to FollowJobLog", async () => {
    const { job: medium } = await client.startJob({ args: ["head", "-c", String(5 << 20), "/dev/zero"] });
    await waitForEnd(medium?.id as bigint);
    expect((await client.getJobLog({ jobId: medium?.id })).log).toHaveLength(5 << 20);
    const { job: large } = await client.startJob({ args: ["head", "-c", String(65 << 20), "/dev/zero"] });
    await waitForEnd(large?.id as bigint);
    const error = await client.getJobLog({ jobId: large?.id }).catch((e) => e);
    expect(error.code).toBe(status.FAILED_PRECONDITION);
    expect(error.details).toContain("FollowJobLog");
  });

  test("FollowJobLog streams from an offset", async () => {
    const { job } = await client.startJob({ args: ["echo", "0123456789"] });
    const tail = await collect(client.followJobLog({ jobId: job?.id, offset: 5n }));
    expect(tail.toString()).toBe("56789\n");
  });

  test("StopJob stops a running job and reports it stopped", async () => {
    const { job } = await client.startJob({ args: ["sleep", "1000"] });
    const stopped = await client.stopJob({ jobId: job?.id });
    expect(stopped.job).toMatchObject({ status: JobStatus.STOPPED, finished: true });
  });

  test("50 concurrent followers over gRPC get identical bytes", async () => {
    const { job } = await client.startJob({
      args: ["sh", "-c", "for i in $(seq 1 50); do head -c 20000 /dev/urandom; sleep 0.005; done"],
    });
    const outputs = await Promise.all(
      Array.from({ length: 50 }, () => collect(client.followJobLog({ jobId: job?.id }))),
    );
    const { log } = await client.getJobLog({ jobId: job?.id });
    expect(log.length).toBe(50 * 20000);
    for (const output of outputs) expect(output).toEqual(Buffer.from(log));
  });

  test("a follower that cancels mid-stream leaves no watcher, fd or stream behind", async () => {
    const pid = daemon.process.pid;
    const { job } = await client.startJob({ args: ["sh", "-c", "echo first; exec sleep 1000"] });
    const logPath = join(daemon.stateDir, "jobs");
    const baselineWatches = inotifyWatches(pid);
    const controller = new AbortController();
    const follow = client
      .followJobLog({ jobId: job?.id }, { signal: controller.signal })
      [Symbol.asyncIterator]();
    expect(Buffer.from((await follow.next()).value).toString()).toBe("first\n");
    // While it follows, the daemon holds one more watch (the log) and the log open.
    expect(inotifyWatches(pid)).toBe(baselineWatches + 1);
    controller.abort();
    await follow.next().catch(() => {});
    await daemon.waitForLog(/FollowJobLog CANCELLED/);
    expect(inotifyWatches(pid)).toBe(baselineWatches);
    const tenantDir = (await client.getJob({ jobId: job?.id })).job?.id;
    expect(tenantDir).toBe(job?.id as bigint);
    expect(countLogFds(pid, logPath)).toBe(0);
    await client.stopJob({ jobId: job?.id });
  });
});

function countLogFds(pid: number, jobsDir: string): number {
  let count = 0;
  for (const tenant of readdirSync(jobsDir)) {
    for (const id of readdirSync(join(jobsDir, tenant))) {
      count += fdsOpenOn(pid, join(jobsDir, tenant, id, "log"));
    }
  }
  return count;
}

describe("errors", () => {
  test("INVALID_ARGUMENT: empty argv, NUL bytes, unknown command, bad limits, bad quoting, negative offset", async () => {
    expect(await codeOf(client.startJob({}))).toBe(status.INVALID_ARGUMENT);
    expect(await codeOf(client.startJob({ args: ["echo", "a\0b"] }))).toBe(status.INVALID_ARGUMENT);
    expect(await codeOf(client.startJob({ args: ["no-such-command"] }))).toBe(status.INVALID_ARGUMENT);
    expect(await codeOf(client.startJob({ args: ["true"], limits: { cpus: -1 } }))).toBe(
      status.INVALID_ARGUMENT,
    );
    expect(await codeOf(client.startJob({ command: "echo 'unterminated" }))).toBe(status.INVALID_ARGUMENT);
    expect(await codeOf(collect(client.followJobLog({ jobId: 1n, offset: -1n })))).toBe(
      status.INVALID_ARGUMENT,
    );
  });

  test("the message says what went wrong", async () => {
    const error = await client.startJob({ args: ["no-such-command"] }).catch((e) => e);
    expect(error.details).toContain("command not found: no-such-command");
  });

  test("NOT_FOUND: unknown job id, for every RPC that takes one", async () => {
    const jobId = 987_654n;
    expect(await codeOf(client.getJob({ jobId }))).toBe(status.NOT_FOUND);
    expect(await codeOf(client.getJobLog({ jobId }))).toBe(status.NOT_FOUND);
    expect(await codeOf(collect(client.followJobLog({ jobId })))).toBe(status.NOT_FOUND);
    expect(await codeOf(client.stopJob({ jobId }))).toBe(status.NOT_FOUND);
  });

  test("FAILED_PRECONDITION: stopping a finished job", async () => {
    const { job } = await client.startJob({ args: ["true"] });
    await waitForEnd(job?.id as bigint);
    const error = await client.stopJob({ jobId: job?.id }).catch((e) => e);
    expect(error.code).toBe(status.FAILED_PRECONDITION);
    expect(error.details).toContain("already finished (exited with code 0)");
  });

  test("UNAUTHENTICATED: no client certificate, or one outside the pool, with the reason", async () => {
    const strangerIdentity = await selfSignedClient();
    const anonymous = connectJobService({
      addr: daemon.address,
      identity: { ca: readFileSync(join(daemon.home, "ca.crt")), cert: "", key: "" },
    });
    const stranger = connectJobService({
      addr: daemon.address,
      identity: {
        cert: strangerIdentity.certPem,
        key: strangerIdentity.keyPem,
        ca: readFileSync(join(daemon.home, "ca.crt")),
      },
    });
    try {
      const noCert = await anonymous.getJobs().catch((e) => e);
      expect(noCert.code).toBe(status.UNAUTHENTICATED);
      expect(noCert.details).toContain("no client certificate");
      const notInPool = await stranger.getJobs().catch((e) => e);
      expect(notInPool.code).toBe(status.UNAUTHENTICATED);
      expect(notInPool.details).toContain("not in the server's pool");
      expect(await codeOf(collect(stranger.followJobLog({ jobId: 1n })))).toBe(status.UNAUTHENTICATED);
    } finally {
      anonymous.close();
      stranger.close();
    }
  });

  test("a job whose command cannot be executed is FAILED, with the reason", async () => {
    // Executable, but in no format the kernel can run: execve fails in the job.
    const dir = mkdtempSync("/var/lib/jobber-program-");
    try {
      chmodSync(dir, 0o755);
      writeFileSync(join(dir, "garbage"), "\x7fnot an ELF\n", { mode: 0o755 });
      const { job } = await client.startJob({ args: [join(dir, "garbage")] });
      expect(await waitForEnd(job?.id as bigint)).toMatchObject({
        status: JobStatus.FAILED,
        finished: true,
        failureReason: "exec failed: ENOEXEC",
      });
      expect((await client.getJobLog({ jobId: job?.id })).log).toHaveLength(0);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});

describe("tenants", () => {
  test("two tenants cannot see or touch each other's jobs", async () => {
    const otherHome = await daemon.issueClient("bob");
    const bob = connectJobService({ addr: daemon.address, home: otherHome });
    try {
      const { job } = await client.startJob({ args: ["sleep", "1000"] });
      const jobId = job?.id as bigint;
      expect((await bob.getJobs()).jobs.map((j) => j.id)).not.toContain(jobId);
      expect(await codeOf(bob.getJob({ jobId }))).toBe(status.NOT_FOUND);
      expect(await codeOf(bob.getJobLog({ jobId }))).toBe(status.NOT_FOUND);
      expect(await codeOf(collect(bob.followJobLog({ jobId })))).toBe(status.NOT_FOUND);
      expect(await codeOf(bob.stopJob({ jobId }))).toBe(status.NOT_FOUND);
      // Still running, untouched.
      expect((await client.getJob({ jobId })).job?.status).toBe(JobStatus.RUNNING);
      const { job: bobsJob } = await bob.startJob({ args: ["true"] });
      expect((await client.getJobs()).jobs.map((j) => j.id)).not.toContain(bobsJob?.id as bigint);
      await client.stopJob({ jobId });
    } finally {
      bob.close();
    }
  });
});

describe("operations", () => {
  test("every request is logged with a timestamp, rpc, status, tenant and time", async () => {
    await client.getJobs();
    expect(daemon.output()).toMatch(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO {2}GetJobs OK tenant=[0-9a-f]{12} ms=[\d.]+$/m,
    );
  });

  test("SIGTERM shuts down cleanly and leaves jobs running; the next daemon adopts them", async () => {
    const own = await startDaemonProcess();
    try {
      const ownClient = own.client();
      const { job } = await ownClient.startJob({ args: ["sh", "-c", "echo before; sleep 1000"] });
      const jobId = job?.id as bigint;
      await own.waitForLog(/StartJob OK/);
      expect(await own.terminate()).toBe(0);
      const again = await own.restart();
      try {
        const againClient = again.client();
        expect((await againClient.getJob({ jobId })).job?.status).toBe(JobStatus.RUNNING);
        const output = collect(againClient.followJobLog({ jobId }));
        expect((await againClient.stopJob({ jobId })).job?.status).toBe(JobStatus.STOPPED);
        expect((await output).toString()).toBe("before\n");
      } finally {
        await again.cleanup();
      }
    } finally {
      await own.cleanup();
    }
  });

  test("the refusal to run as another user than root says why", () => {
    expect(rootRefusal(0)).toBeUndefined();
    expect(rootRefusal(1000)).toContain("jobberd must run as root (this is uid 1000)");
  });

  // Needs a checkout (and Bun) that the unprivileged user can read, which a
  // private temporary clone is not.
  test.skipIf(!readableByNobody(import.meta.dir))(
    "refuses to run as a user other than root, saying why",
    async () => {
      const run = Bun.spawnSync(["bun", join(import.meta.dir, "../src/main.ts"), "--listen", "127.0.0.1:0"], {
        uid: 65534,
        gid: 65534,
        env: { ...process.env, NO_COLOR: "1", HOME: "/nonexistent" },
      } as Parameters<typeof Bun.spawnSync>[1]);
      expect(run.exitCode).toBe(1);
      expect(`${run.stderr}${run.stdout}`).toContain("jobberd must run as root");
    },
  );
});

function readableByNobody(path: string): boolean {
  const check = Bun.spawnSync(["test", "-r", path, "-a", "-x", process.execPath], {
    uid: 65534,
    gid: 65534,
  } as Parameters<typeof Bun.spawnSync>[1]);
  return check.exitCode === 0;
}
