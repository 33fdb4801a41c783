// A job's environment, working directory and timeout, and the end-of-job
// hook the daemon logs and counts with.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readFileSync, watch, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Certificate, JobEnded } from "../src/index";
import { collect, createFixture, type Fixture } from "./fixture";

let fixture: Fixture;
let tenant: Certificate;
const ended: JobEnded[] = [];
/** A directory every job can see (not a private scratch one), removed at the end. */
let visible: string;

beforeAll(() => {
  fixture = createFixture({ onJobEnded: (event) => ended.push(event) });
  tenant = fixture.jobber.certificateFromDer(Buffer.from("environment tenant"));
  visible = mkdtempSync("/var/lib/jobber-env-");
  chmodSync(visible, 0o755);
});

afterAll(async () => {
  // Nothing a test started may outlive it.
  await fixture.finish(visible);
});

async function output(argv: string[], environment = {}, limits = {}): Promise<string> {
  const job = tenant.newJob(argv, limits, environment);
  await job.start();
  return (await collect(job.follow())).toString();
}

describe("environment", () => {
  test("the default is a minimal PATH, HOME=/ and the job's id, nothing of the daemon's", async () => {
    const job = tenant.newJob(["env"]);
    await job.start();
    const lines = (await collect(job.follow())).toString().trim().split("\n").sort();
    expect(lines).toEqual([
      "HOME=/",
      `JOBBER_JOB_ID=${job.id}`,
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ]);
  });

  test("the client's variables are added and replace defaults; values keep '=', spaces and UTF-8", async () => {
    const printed = await output(["sh", "-c", 'printf "%s|%s|%s" "$GREETING" "$HOME" "$EQUATION"'], {
      env: ["GREETING=grüß dich", "HOME=/tmp", "EQUATION=a=b"],
    });
    expect(printed).toBe("grüß dich|/tmp|a=b");
  });

  test("a client's PATH is where a bare command name is found", async () => {
    writeFileSync(join(visible, "only-here"), "#!/bin/sh\necho found on the PATH\n", { mode: 0o755 });
    await expect(tenant.newJob(["only-here"]).start()).rejects.toThrow(/command not found: only-here/);
    expect(await output(["only-here"], { env: [`PATH=${visible}:/usr/bin:/bin`] })).toBe(
      "found on the PATH\n",
    );
  });

  test("entries that are not KEY=VALUE, hold NUL, or are too many are INVALID_ARGUMENT", () => {
    for (const env of [
      ["NOVALUE"],
      ["=value"],
      ["KEY=a\0b"],
      Array.from({ length: 1025 }, (_, i) => `K${i}=v`),
    ]) {
      expect(() => tenant.newJob(["true"], {}, { env })).toThrow(
        expect.objectContaining({ code: "INVALID_ARGUMENT" }),
      );
    }
    expect(() => tenant.newJob(["true"], {}, { env: [`BIG=${"x".repeat(200 * 1024)}`] })).toThrow(
      /at most 131072/,
    );
  });
});

describe("working directory", () => {
  test("the command runs there, and a relative program is found from there", async () => {
    writeFileSync(join(visible, "here.sh"), '#!/bin/sh\necho "$PWD"\n', { mode: 0o755 });
    expect(await output(["./here.sh"], { workdir: visible })).toBe(`${visible}\n`);
    expect(await output(["pwd"], { workdir: "/etc/../usr" })).toBe("/usr\n");
  });

  test("the job's record keeps its environment and working directory", async () => {
    const job = tenant.newJob(["true"], {}, { env: ["A=1"], workdir: "/usr" });
    await job.start();
    await job.finished();
    const record = JSON.parse(
      readFileSync(join(fixture.stateDir, "jobs", tenant.hash(), String(job.id), "job.json"), "utf8"),
    );
    expect(record).toMatchObject({ env: ["A=1"], workdir: "/usr" });
  });

  test("a workdir the job cannot enter is an error of the start, missing or hidden alike", async () => {
    for (const workdir of ["/no/such/dir", "/root"]) {
      await expect(tenant.newJob(["true"], {}, { workdir }).start()).rejects.toMatchObject({
        code: "INVALID_ARGUMENT",
        message: expect.stringContaining(`cannot enter the working directory ${workdir}`),
      });
    }
  });

  test("a relative or NUL-holding workdir is INVALID_ARGUMENT", () => {
    for (const workdir of ["srv", "./srv", "/srv\0x"]) {
      expect(() => tenant.newJob(["true"], {}, { workdir })).toThrow(
        expect.objectContaining({ code: "INVALID_ARGUMENT" }),
      );
    }
  });
});

describe("timeout", () => {
  test("a job that runs past its timeout is stopped as by StopJob and reported as timed out", async () => {
    const job = tenant.newJob(["sleep", "1000"], { timeoutSeconds: 0.2 });
    await job.start();
    expect(await job.finished()).toMatchObject({ state: "timed_out", signal: "SIGTERM" });
    expect((await job.info()).limits.timeoutSeconds).toBe(0.2);
  });

  test("a job that ignores SIGTERM is killed after the grace period, still timed out", async () => {
    const job = tenant.newJob(["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"], {
      timeoutSeconds: 0.2,
    });
    await job.start();
    expect(await job.finished()).toMatchObject({ state: "timed_out", signal: "SIGKILL" });
  });

  test("a job that ends in time is not touched by its timeout", async () => {
    const job = tenant.newJob(["true"], { timeoutSeconds: 600 });
    await job.start();
    expect(await job.finished()).toMatchObject({ state: "exited", exitCode: 0 });
  });

  test("a negative or non-finite timeout is INVALID_ARGUMENT", () => {
    expect(() => tenant.newJob(["true"], { timeoutSeconds: -1 })).toThrow(/timeoutSeconds/);
    expect(() => tenant.newJob(["true"], { timeoutSeconds: Number.POSITIVE_INFINITY })).toThrow(
      /timeoutSeconds/,
    );
  });

  test("a deadline that passed while no daemon watched stops the job as soon as it is adopted", async () => {
    const job = tenant.newJob(["sh", "-c", "echo started; sleep 1; echo past-deadline; sleep 1000"], {
      timeoutSeconds: 0.5,
    });
    const id = job.id;
    await job.start();
    // The daemon goes away before the deadline...
    fixture.jobber.close();
    // ...and the job runs on past it (its log says so; the test waits on the file, not the clock).
    const log = join(fixture.stateDir, "jobs", tenant.hash(), String(id), "log");
    await new Promise<void>((resolve) => {
      const watcher = watch(log, () => {
        if (readFileSync(log, "utf8").includes("past-deadline")) {
          watcher.close();
          resolve();
        }
      });
      if (readFileSync(log, "utf8").includes("past-deadline")) {
        watcher.close();
        resolve();
      }
    });
    const reopened = fixture.reopen();
    const adopted = reopened.certificateFromDer(Buffer.from("environment tenant"));
    tenant = adopted;
    expect(await (await adopted.getJob(id)).finished()).toMatchObject({ state: "timed_out" });
  });
});

describe("onJobEnded", () => {
  test("is told once per job, with the tenant, the job and its final status", async () => {
    const job = tenant.newJob(["sh", "-c", "exit 7"]);
    await job.start();
    await job.finished();
    const events = ended.filter((event) => event.job.id === job.id);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      tenant: tenant.hash(),
      job: { id: job.id, argv: ["sh", "-c", "exit 7"], status: { state: "exited", exitCode: 7 } },
    });
  });
});
