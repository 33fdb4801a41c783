// The log is capped on disk at limits.logBytes, whatever the job does: it
// writes without end, or asks the filesystem for space past the cap. The job
// sees its writes fail (EFBIG) and the job reports log_truncated.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { statSync } from "node:fs";
import { join } from "node:path";
import type { Certificate } from "../src/index";
import { collect, createFixture, type Fixture } from "./fixture";

const MiB = 1024 * 1024;
let fixture: Fixture;
let tenant: Certificate;

beforeAll(() => {
  fixture = createFixture();
  tenant = fixture.jobber.certificateFromDer(Buffer.from("log cap tenant"));
});

afterAll(async () => {
  // Nothing a test started may outlive it.
  await fixture.finish();
});

function logFile(id: number): string {
  return join(fixture.stateDir, "jobs", tenant.hash(), String(id), "log");
}

/** Blocks the file has on disk, in bytes (what a full disk is made of, unlike its length). */
function allocatedBytes(path: string): number {
  return statSync(path).blocks * 512;
}

test("`yes` stops at the log's cap: the file holds exactly the cap, the job is told, and log_truncated says so", async () => {
  const job = tenant.newJob(["yes"], { logBytes: MiB });
  await job.start();
  // Without a cap `yes` never ends; with one its write fails (EFBIG) and it exits.
  expect(await job.finished()).toMatchObject({ state: "exited", exitCode: 1 });
  expect(statSync(logFile(job.id)).size).toBe(MiB);
  const log = await collect(job.follow());
  expect(log.length).toBe(MiB);
  expect(log.subarray(0, 4).toString()).toBe("y\ny\n");
  expect((await job.info()).logTruncated).toBe(true);
});

test("a log under its cap is not truncated", async () => {
  const job = tenant.newJob(["echo", "short"], { logBytes: MiB });
  await job.start();
  await job.finished();
  expect((await job.info()).logTruncated).toBe(false);
});

test("what the job sees at the cap: the write that reaches it is cut short, the next fails with EFBIG", async () => {
  const job = tenant.newJob(
    [
      "python3",
      "-c",
      [
        "import errno, os, sys",
        "os.write(1, b'x' * 4000)",
        "landed = os.write(1, b'y' * 200)",
        "try:",
        "    os.write(1, b'z')",
        "except OSError as e:",
        "    sys.exit(landed if e.errno == errno.EFBIG else 1)",
        "sys.exit(2)",
      ].join("\n"),
    ],
    { logBytes: 4096 },
  );
  await job.start();
  // 96 of the 200 bytes fit; then EFBIG (not SIGXFSZ: the job is not killed for it, and carries on).
  expect(await job.finished()).toMatchObject({ state: "exited", exitCode: 96 });
  expect(statSync(logFile(job.id)).size).toBe(4096);
  expect((await job.info()).logTruncated).toBe(true);
});

test("fallocate past the cap fails: the log cannot reserve disk it may not fill", async () => {
  const job = tenant.newJob(
    [
      "python3",
      "-c",
      [
        "import errno, os, sys",
        "try:",
        "    os.posix_fallocate(1, 0, 5 << 30)",
        "except OSError as e:",
        "    sys.exit(100 if e.errno == errno.EFBIG else e.errno)",
        "sys.exit(0)",
      ].join("\n"),
    ],
    { logBytes: MiB },
  );
  await job.start();
  expect(await job.finished()).toMatchObject({ state: "exited", exitCode: 100 });
  expect(statSync(logFile(job.id)).size).toBe(0);
  expect(allocatedBytes(logFile(job.id))).toBeLessThanOrEqual(MiB);
});

test("fallocate modes that would get past the cap (keep size, insert range, zero range) are refused", async () => {
  // The kernel checks RLIMIT_FSIZE only when fallocate extends a file's
  // length: FALLOC_FL_KEEP_SIZE reserves blocks past it with the length
  // unchanged, FALLOC_FL_INSERT_RANGE grows the file unchecked (and a
  // ZERO_RANGE then fills it). Each of them reserved 64 MiB for a 1 MiB log.
  const job = tenant.newJob(
    [
      "python3",
      "-c",
      [
        "import ctypes, os",
        "libc = ctypes.CDLL(None, use_errno=True)",
        "libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]",
        "os.write(1, b'x' * 4096)",
        "for mode in (0x01, 0x20, 0x10, 0x11):  # KEEP_SIZE, INSERT_RANGE, ZERO_RANGE, ZERO_RANGE|KEEP_SIZE",
        "    rc = libc.fallocate(1, mode, 0, 64 << 20)",
        "    os.write(2, b' %d' % (ctypes.get_errno() if rc else 0))",
      ].join("\n"),
    ],
    { logBytes: MiB },
  );
  await job.start();
  expect(await job.finished()).toMatchObject({ state: "exited", exitCode: 0 });
  // Every mode answered EOPNOTSUPP (95), as for a filesystem that lacks it.
  expect((await collect(job.follow())).subarray(4096).toString()).toBe(" 95 95 95 95");
  expect(statSync(logFile(job.id)).size).toBeLessThanOrEqual(MiB);
  expect(allocatedBytes(logFile(job.id))).toBeLessThanOrEqual(MiB);
});
