import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { removeCgroupParent } from "../../../test-support/cgroup-cleanup";
import type { Certificate } from "../src/index";
import { collect, createFixture, type Fixture, processesInCgroup, waitForOutput } from "./fixture";

let fixture: Fixture;
let tenant: Certificate;

beforeAll(() => {
  fixture = createFixture();
  tenant = fixture.jobber.certificateFromDer(Buffer.from("tenant one"));
});

afterAll(async () => {
  // Nothing a test started may outlive it.
  await fixture.finish();
});

async function run(argv: string[], limits = {}) {
  const job = tenant.newJob(argv, limits);
  await job.start();
  return job;
}

describe("output", () => {
  test("binary output arrives byte for byte: NUL, invalid UTF-8, no trailing newline", async () => {
    const job = await run(["printf", "\\000\\377\\376hello\\200\\000"]);
    const expected = Buffer.from([0, 0xff, 0xfe, ...Buffer.from("hello"), 0x80, 0]);
    expect(await collect(job.follow())).toEqual(expected);
    expect(Buffer.from(await job.readLog())).toEqual(expected);
  });

  test("stdout and stderr both go to the log", async () => {
    const job = await run(["sh", "-c", "echo out; echo err >&2"]);
    expect((await collect(job.follow())).toString()).toBe("out\nerr\n");
  });

  test("50 concurrent followers of a running job get identical output", async () => {
    const job = await run([
      "sh",
      "-c",
      "read line < /proc/self/fd/0; for i in $(seq 1 2000); do echo line $i; done",
    ]);
    // The job prints only once stdin (/dev/null) is read: followers attach while it runs.
    const outputs = await Promise.all(Array.from({ length: 50 }, () => collect(job.follow())));
    const log = Buffer.from(await job.readLog());
    expect(log.toString().split("\n")).toHaveLength(2001);
    for (const output of outputs) expect(output).toEqual(log);
  });

  test("followers attached while the job writes in bursts see every byte once", async () => {
    const job = await run([
      "sh",
      "-c",
      "for i in $(seq 1 20); do head -c 100000 /dev/zero | tr '\\0' x; echo; sleep 0.01; done",
    ]);
    const outputs = await Promise.all(Array.from({ length: 50 }, () => collect(job.follow())));
    expect(await job.finished()).toMatchObject({ state: "exited", exitCode: 0 });
    for (const output of outputs) expect(output.length).toBe(20 * 100001);
  });

  test("a follower that starts after the job ended gets everything and ends", async () => {
    const job = await run(["seq", "1", "10000"]);
    await job.finished();
    const output = (await collect(job.follow())).toString();
    expect(output.split("\n")[9999]).toBe("10000");
  });

  test("followers that move together read each chunk from the file once and share it", async () => {
    const live = await run(["sh", "-c", "head -c 300000 /dev/zero; exec sleep 1000"]);
    const [first, second] = [live.follow(), live.follow()];
    const a = await first.next();
    const b = await second.next();
    expect(a.value).toBe(b.value);
    await first.return?.();
    await second.return?.();
    await live.stop(0);
  });

  test("follow from an offset starts there", async () => {
    const job = await run(["echo", "0123456789"]);
    await job.finished();
    expect((await collect(job.follow(4))).toString()).toBe("456789\n");
  });

  test("a dropped follower releases its watcher at once, even while waiting", async () => {
    const job = await run(["sleep", "1000"]);
    const baseline = fixture.jobber.stats().watchers;
    const follower = job.follow();
    const pending = follower.next();
    expect(fixture.jobber.stats().watchers).toBe(baseline + 1);
    await follower.return?.();
    expect(await pending).toEqual({ value: undefined, done: true });
    expect(fixture.jobber.stats().watchers).toBe(baseline);
    await job.stop(0);
  });
});

describe("lifecycle", () => {
  test("exit code is reported", async () => {
    const job = await run(["sh", "-c", "exit 7"]);
    expect(await job.finished()).toMatchObject({ state: "exited", exitCode: 7 });
    expect((await job.info()).status.finishedAt).toBeString();
  });

  test("death by signal is reported", async () => {
    const job = await run(["sh", "-c", "kill -SEGV $$"]);
    expect(await job.finished()).toMatchObject({ state: "killed", signal: "SIGSEGV" });
  });

  test("stop: SIGTERM reaches the command, which may exit cleanly", async () => {
    const job = await run([
      "sh",
      "-c",
      "trap 'echo got TERM; exit 0' TERM; echo ready; while :; do sleep 0.1; done",
    ]);
    await waitForOutput(job.follow(), "ready");
    const stopped = await job.stop();
    expect(stopped.status).toMatchObject({ state: "stopped", exitCode: 0 });
    expect(Buffer.from(await job.readLog()).toString()).toContain("got TERM");
  });

  test("stopping a job whose command forked children and ignores SIGTERM leaves no process behind", async () => {
    const job = await run([
      "sh",
      "-c",
      "trap '' TERM; sleep 1000 & sleep 1000 & (trap '' TERM; sleep 1000) & echo forked; wait",
    ]);
    await waitForOutput(job.follow(), "forked");
    expect(
      processesInCgroup(fixture.cgroupParent, `${tenant.hash()}/${job.id}`).length,
    ).toBeGreaterThanOrEqual(5);
    const stopped = await job.stop(300);
    expect(stopped.status).toMatchObject({ state: "stopped", signal: "SIGKILL" });
    await fixture.jobber.cgroupsRemoved();
    expect(processesInCgroup(fixture.cgroupParent, `${tenant.hash()}/${job.id}`)).toEqual([]);
    expect(fixture.jobber.stats().cgroups).not.toContain(`${tenant.hash()}/${job.id}`);
  });

  test("a stopped job stays stopped and a second stop is refused", async () => {
    const job = await run(["sleep", "1000"]);
    await job.stop();
    expect(job.stop()).rejects.toMatchObject({ name: "JobberError", code: "FAILED_PRECONDITION" });
  });

  test("concurrent stops of one job agree", async () => {
    const job = await run(["sleep", "1000"]);
    const [a, b] = await Promise.all([job.stop(), job.stop()]);
    expect(a.status).toEqual(b.status);
  });

  test("the launcher process dying neither stops running jobs nor new starts", async () => {
    const running = await run(["sh", "-c", "echo up; exec sleep 1000"]);
    await waitForOutput(running.follow(), "up");
    const first = fixture.jobber.stats().launcherPid as number;
    expect(readFileSync(`/proc/${first}/comm`, "utf8")).toBe("jobber-launcher\n");
    process.kill(first, "SIGKILL");
    const next = await run(["echo", "after"]);
    expect((await collect(next.follow())).toString()).toBe("after\n");
    expect(fixture.jobber.stats().launcherPid).not.toBe(first);
    expect(existsSync(`/proc/${first}`)).toBe(false);
    // The job the dead launcher made is still watched: its end is seen and recorded.
    expect(await running.status()).toEqual({ state: "running" });
    expect((await running.stop(0)).status).toMatchObject({ state: "stopped" });
  });

  test("a launcher that stops answering is replaced after a while, not waited for forever", async () => {
    const patient = createFixture({ launcherTimeoutMs: 300 });
    try {
      const wedged = patient.jobber.stats().launcherPid as number;
      process.kill(wedged, "SIGSTOP");
      const job = patient.jobber.certificateFromDer(Buffer.from("x")).newJob(["echo", "anyway"]);
      await job.start();
      expect((await collect(job.follow())).toString()).toBe("anyway\n");
      expect(patient.jobber.stats().launcherPid).not.toBe(wedged);
      expect(existsSync(`/proc/${wedged}`)).toBe(false);
      await patient.finish();
    } finally {
      patient.cleanup();
    }
  });

  test("the launcher holds none of the daemon's memory, and neither does a job's init", async () => {
    const job = await run(["sh", "-c", "echo up; exec sleep 1000"]);
    await waitForOutput(job.follow(), "up");
    const rssKb = (pid: number) =>
      Number(/^Rss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"))?.[1]);
    const init = Number(
      readFileSync(join(fixture.stateDir, "jobs", tenant.hash(), String(job.id), "pid"), "utf8"),
    );
    // A copy of the daemon would be tens of megabytes; the launcher and its inits are a few pages.
    expect(rssKb(fixture.jobber.stats().launcherPid as number)).toBeLessThan(256);
    expect(rssKb(init)).toBeLessThan(256);
    await job.stop(0);
  });

  test("closing the library lets go of every fd and of the launcher; the job keeps running", () => {
    // In a process of its own, where nothing else opens or closes fds meanwhile.
    const run = Bun.spawnSync([process.execPath, join(import.meta.dir, "close-releases.ts")]);
    expect(run.stderr.toString()).toBe("");
    expect(JSON.parse(run.stdout.toString())).toEqual({
      fdsBefore: expect.any(Number),
      fdsAfterClose: expect.any(Number),
      heldWhileRunning: true,
      launcherGone: true,
      stillRunning: "running",
      stoppedByTheNext: "stopped",
    });
    const { fdsBefore, fdsAfterClose } = JSON.parse(run.stdout.toString());
    expect(fdsAfterClose).toBe(fdsBefore);
  });

  test("100 concurrent starts get 100 distinct ids", async () => {
    const jobs = await Promise.all(Array.from({ length: 100 }, () => run(["true"])));
    expect(new Set(jobs.map((job) => job.id)).size).toBe(100);
    await Promise.all(jobs.map((job) => job.finished()));
  });

  test("ids are never reused, across a restart too", async () => {
    const before = await run(["true"]);
    await before.finished();
    const jobber = fixture.reopen();
    const after = jobber.certificateFromDer(Buffer.from("tenant one")).newJob(["true"]);
    tenant = jobber.certificateFromDer(Buffer.from("tenant one"));
    expect(after.id).toBeGreaterThan(before.id);
  });

  test("a job ended while nobody watched reports its real exit code once watched again", async () => {
    const job = await run(["sh", "-c", "read x < /proc/self/fd/0; exit 42"]);
    fixture.jobber.close();
    const jobber = fixture.reopen();
    tenant = jobber.certificateFromDer(Buffer.from("tenant one"));
    const again = await tenant.getJob(job.id);
    expect(await again.finished()).toMatchObject({ state: "exited", exitCode: 42 });
  });

  test("a running job is adopted after a restart: follow and stop (SIGTERM to its init, found again) work", async () => {
    const job = await run([
      "sh",
      "-c",
      "trap 'echo terminated; exit 3' TERM; echo before; sleep 1000 & wait",
    ]);
    await waitForOutput(job.follow(), "before");
    fixture.jobber.close();
    const jobber = fixture.reopen();
    tenant = jobber.certificateFromDer(Buffer.from("tenant one"));
    const adopted = await tenant.getJob(job.id);
    expect((await adopted.status()).state).toBe("running");
    const output = collect(adopted.follow());
    // Exit code 3, not SIGKILL: the daemon found the job's init in its tenant's cgroup and signalled it.
    expect((await adopted.stop(10_000)).status).toMatchObject({ state: "stopped", exitCode: 3 });
    expect((await output).toString()).toBe("before\nterminated\n");
  });

  test("a job whose cgroup vanished while nobody watched (a reboot) is finished, not fatal", async () => {
    const job = await run(["sleep", "1000"]);
    fixture.jobber.close();
    // What a reboot leaves: the job directory without a final status, no cgroup.
    removeCgroupParent(fixture.cgroupParent);
    const jobber = fixture.reopen();
    tenant = jobber.certificateFromDer(Buffer.from("tenant one"));
    const again = await tenant.getJob(job.id);
    expect(await again.finished()).toMatchObject({ state: "killed", signal: "SIGKILL" });
  });

  test("the job's cgroup is gone once it ends, however it ends", async () => {
    const jobs = await Promise.all([run(["true"]), run(["false"]), run(["sh", "-c", "kill -9 $$"])]);
    await Promise.all(jobs.map((job) => job.finished()));
    await fixture.jobber.cgroupsRemoved();
    const names = fixture.jobber.stats().cgroups;
    for (const job of jobs) expect(names).not.toContain(`${tenant.hash()}/${job.id}`);
  });
});

describe("errors", () => {
  test("unknown id and another tenant's job are both NOT_FOUND", async () => {
    const job = await run(["true"]);
    const other = fixture.jobber.certificateFromDer(Buffer.from("tenant two"));
    expect(other.getJob(job.id)).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect(tenant.getJob(999_999)).rejects.toMatchObject({
      code: "NOT_FOUND",
      message: "job 999999 not found",
    });
    expect(await other.getJobs()).toEqual([]);
    await job.finished();
  });

  test("bad argv is INVALID_ARGUMENT", () => {
    expect(() => tenant.newJob([])).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
    expect(() => tenant.newJob([""])).toThrow(/empty/);
    expect(() => tenant.newJob(["echo", "a\0b"])).toThrow(/NUL/);
    expect(() => tenant.newJob(["echo", ...Array(5000).fill("x")])).toThrow(/too many arguments/);
    expect(() => tenant.newJob(["echo", "x".repeat(200_000)])).toThrow(/bytes/);
  });

  test("a command that does not exist is an error of the start, not a job", async () => {
    const before = (await tenant.getJobs()).length;
    const missing = tenant.newJob(["no-such-command-xyz"]);
    await expect(missing.start()).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      message: expect.stringContaining("command not found: no-such-command-xyz"),
    });
    await expect(tenant.newJob(["/etc/passwd"]).start()).rejects.toThrow(/not an executable file/);
    // Refused starts leave no job behind.
    expect((await tenant.getJobs()).length).toBe(before);
  });

  test("bad limits are INVALID_ARGUMENT", () => {
    expect(() => tenant.newJob(["true"], { cpus: -1 })).toThrow(/cpus/);
    expect(() => tenant.newJob(["true"], { memoryBytes: 1.5 })).toThrow(/memoryBytes/);
    expect(() => tenant.newJob(["true"], { memoryBytes: 1000 })).toThrow(/at least 1 MiB/);
    expect(() => tenant.newJob(["true"], { pidsMax: Number.NaN })).toThrow(/pidsMax/);
  });

  test("a program the job's user may not execute is refused at start; one the kernel cannot run fails", async () => {
    // Somewhere the job can see: not a scratch directory it gets privately.
    const dir = mkdtempSync("/var/lib/jobber-program-");
    try {
      chmodSync(dir, 0o755);
      // Executable by root only: the job runs as nobody.
      writeFileSync(join(dir, "root-only"), "#!/bin/sh\necho hi\n", { mode: 0o700 });
      await expect(tenant.newJob([join(dir, "root-only")]).start()).rejects.toMatchObject({
        code: "INVALID_ARGUMENT",
        message: expect.stringContaining("not an executable file for the job's user"),
      });
      // Executable by everyone, but no format the kernel knows: execve itself fails.
      writeFileSync(join(dir, "garbage"), "\x7fnot an ELF\n", { mode: 0o755 });
      const failed = await run([join(dir, "garbage")]);
      expect(await failed.finished()).toMatchObject({ state: "failed", reason: "exec failed: ENOEXEC" });
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  test("an unreadable pool is an INTERNAL JobberError", async () => {
    const broken = createFixture();
    try {
      rmdirSync(join(broken.home, "pool"));
      writeFileSync(join(broken.home, "pool"), "not a directory");
      expect(broken.jobber.getClientCertificates()).rejects.toMatchObject({
        name: "JobberError",
        code: "INTERNAL",
      });
    } finally {
      broken.cleanup();
    }
  });

  test("newCertificate saves into the pool; getClientCertificates finds it by hash", async () => {
    const made = Bun.spawnSync(
      ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"].concat([
        "-keyout",
        "/dev/null",
        "-subj",
        "/CN=pool test",
        "-days",
        "1",
      ]),
    );
    const pem = made.stdout.toString();
    const certificate = fixture.jobber.newCertificate(pem);
    expect(certificate.hash()).toMatch(/^[0-9a-f]{64}$/);
    expect(Buffer.from(certificate.bytes()).toString()).toBe(pem);
    const pool = await fixture.jobber.getClientCertificates();
    expect(pool.map((c) => c.hash())).toContain(certificate.hash());
  });

  test("a pool file holding several certificates (a bundle) is one tenant each; a file with none is refused", async () => {
    const pool = createFixture();
    try {
      const pems = ["bundle one", "bundle two"].map((name) =>
        Bun.spawnSync(
          [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
          ].concat(["-keyout", "/dev/null", "-subj", `/CN=${name}`, "-days", "1"]),
        ).stdout.toString(),
      );
      writeFileSync(join(pool.home, "pool", "bundle.pem"), pems.join(""));
      const hashes = pems.map((pem) =>
        new Bun.CryptoHasher("sha256").update(new X509Certificate(pem).raw).digest("hex"),
      );
      expect((await pool.jobber.getClientCertificates()).map((c) => c.hash())).toEqual(hashes);
      writeFileSync(join(pool.home, "pool", "empty.crt"), "no certificate here\n");
      expect(pool.jobber.getClientCertificates()).rejects.toMatchObject({
        code: "FAILED_PRECONDITION",
        message: expect.stringContaining("holds no PEM certificate"),
      });
    } finally {
      pool.cleanup();
    }
  });

  test("a text that is not a certificate is refused with INVALID_ARGUMENT", async () => {
    expect(() => fixture.jobber.newCertificate("hello")).toThrow(/not a PEM certificate/);
    let refusal: unknown;
    try {
      fixture.jobber.newCertificate("hello");
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toMatchObject({ name: "JobberError", code: "INVALID_ARGUMENT" });
  });
});

describe("sandbox", () => {
  test("the job is PID 2 under its own init, sees only lo, and runs as nobody", async () => {
    const job = await run([
      "sh",
      "-c",
      "echo pid=$$; ls /proc | grep -c '^[0-9]'; ls /sys/class/net; id -u; hostname",
    ]);
    const lines = (await collect(job.follow())).toString().trim().split("\n");
    expect(lines[0]).toBe("pid=2");
    // init, sh, ls, grep: nothing of the host.
    expect(Number(lines[1])).toBeLessThanOrEqual(4);
    expect(lines[2]).toBe("lo");
    expect(lines[3]).toBe("65534");
    expect(lines[4]).toBe(`job-${job.id}`);
  });

  test("the job cannot read the daemon's home, the pool, or another tenant's log", async () => {
    writeFileSync(join(fixture.home, "pool", "someone.crt"), "pool certificate\n");
    const other = fixture.jobber.certificateFromDer(Buffer.from("tenant two"));
    const secret = other.newJob(["echo", "secret of tenant two"]);
    await secret.start();
    await secret.finished();
    const otherLog = join(fixture.stateDir, "jobs", other.hash(), String(secret.id), "log");
    const job = await run([
      "sh",
      "-c",
      `cat ${fixture.home}/secret.key ${fixture.home}/pool/someone.crt ${otherLog}; ls ${fixture.stateDir}/jobs; echo done`,
    ]);
    const output = (await collect(job.follow())).toString();
    expect(output).not.toContain("private key");
    expect(output).not.toContain("pool certificate");
    expect(output).not.toContain("secret of tenant two");
    expect(output).toContain("Permission denied");
    expect(output).toEndWith("done\n");
    // All of it is there on the host.
    expect(readFileSync(otherLog, "utf8")).toBe("secret of tenant two\n");
  });

  test("the job can write only its output and its private scratch directories", async () => {
    const job = await run([
      "sh",
      "-c",
      [
        "touch /etc/jobber-escape 2>/dev/null && echo wrote-etc",
        "touch /var/lib/jobber-escape 2>/dev/null && echo wrote-var-lib",
        "echo scratch > /tmp/f && cat /tmp/f",
        "echo scratch > /dev/shm/f && cat /dev/shm/f",
        "ls -A /var/tmp | wc -l",
      ].join("; "),
    ]);
    const output = (await collect(job.follow())).toString();
    expect(output).toBe("scratch\nscratch\n0\n");
    expect(existsSync("/var/lib/jobber-escape")).toBe(false);
  });

  test("loopback is up inside the job", async () => {
    const job = await run(["cat", "/sys/class/net/lo/operstate", "/sys/class/net/lo/flags"]);
    const [, flags] = (await collect(job.follow())).toString().trim().split("\n");
    expect(Number(flags) & 1).toBe(1); // IFF_UP
  });
});
