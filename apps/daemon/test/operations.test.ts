// jobberd as an operator runs it: probes and third-party clients (health,
// reflection through `buf curl`), metrics scraped over HTTP, the config file,
// log formats, --version, --san, issue-client --owner, and a busy port.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { credentials, makeGenericClientConstructor, type ServiceError } from "@grpc/grpc-js";
import { connectJobService } from "@jobber/proto";
import { service as healthService } from "grpc-health-check";
import { removeCgroupParent } from "../../../test-support/cgroup-cleanup";
import { collect, type DaemonProcess, startDaemonProcess, TEST_ROOT } from "./fixture";

const ROOT = resolve(import.meta.dir, "../../..");
const MAIN = join(ROOT, "apps/daemon/src/main.ts");
const BUF = join(ROOT, "node_modules/.bin/buf");
const HEALTH_PROTO = join(ROOT, "node_modules/grpc-health-check/proto/health/v1/health.proto");

let daemon: DaemonProcess;
let scratch: string;

beforeAll(async () => {
  daemon = await startDaemonProcess(["--metrics-listen", "127.0.0.1:0"]);
  scratch = mkdtempSync(join(TEST_ROOT, "operations-"));
});

afterAll(async () => {
  await daemon.cleanup();
  rmSync(scratch, { recursive: true, force: true });
});

/** `buf curl` over gRPC with TLS; `identity` false leaves the client certificate out. */
async function bufCurl(target: DaemonProcess, args: string[], identity = true) {
  const home = target.home;
  const tls = ["--cacert", join(home, "ca.crt"), ...(identity ? ["--cert", join(home, "client.crt")] : [])];
  const key = identity ? ["--key", join(home, "client.key")] : [];
  const child = Bun.spawn([BUF, "curl", "--protocol", "grpc", ...tls, ...key, ...args], {
    stdout: "pipe",
    stderr: "pipe",
    // buf must not look for a registry login or a cache outside the test's reach.
    env: { ...process.env, HOME: scratch, BUF_CACHE_DIR: join(scratch, "buf-cache") },
  });
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  return { stdout, stderr, exitCode };
}

/**
 * Runs jobberd (from source) to the end: for flags that make it exit. Should
 * it serve after all, it does so on a free port with directories of the
 * test's own, never the defaults.
 */
async function runJobberd(args: string[], env: Record<string, string> = {}) {
  const own = mkdtempSync(join(scratch, "run-"));
  const safe =
    args[0] === "issue-client"
      ? []
      : [
          "--home",
          join(own, "home"),
          "--state-dir",
          join(own, "state"),
          "--listen",
          "127.0.0.1:0",
          "--cgroup-parent",
          `jobber-test-${process.pid}-run`,
        ];
  const child = Bun.spawn(["bun", MAIN, ...safe, ...args], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, ...env },
  });
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  return { stdout, stderr, exitCode };
}

async function scrape(target: DaemonProcess): Promise<string> {
  const url = /metrics at (http:\/\/\S+)/.exec(target.output())?.[1] as string;
  const response = await fetch(url);
  expect(response.headers.get("content-type")).toContain("text/plain");
  return response.text();
}

/** The value of one sample in the Prometheus text format, e.g. `jobber_jobs_started_total`. */
function sample(metrics: string, name: string): number | undefined {
  const line = metrics.split("\n").find((candidate) => candidate.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

describe("health (grpc.health.v1)", () => {
  test("buf curl gets SERVING without a client certificate", async () => {
    const result = await bufCurl(
      daemon,
      ["--schema", HEALTH_PROTO, "-d", "{}", `https://${daemon.address}/grpc.health.v1.Health/Check`],
      false,
    );
    expect(result.stderr).toBe("");
    expect(JSON.parse(result.stdout)).toEqual({ status: "SERVING" });
  });

  test("a watcher without a certificate sees SERVING, then NOT_SERVING and the end at shutdown", async () => {
    const own = await startDaemonProcess();
    try {
      const Health = makeGenericClientConstructor(healthService, "Health");
      const health = new Health(
        own.address,
        credentials.createSsl(readFileSync(join(own.home, "ca.crt"))),
        // Bun sends no IP address as TLS server name; the certificate names localhost too.
        { "grpc.ssl_target_name_override": "localhost" },
      );
      const watch = (health.watch as (request: object) => NodeJS.EventEmitter)({
        service: "jobber.v1.JobService",
      });
      const statuses: string[] = [];
      const ended = new Promise<void>((resolvePromise, reject) => {
        watch.on("data", (response: { status: string }) => {
          statuses.push(response.status);
          if (statuses.length === 1) own.process.kill("SIGTERM");
        });
        watch.on("end", resolvePromise);
        watch.on("error", (error: ServiceError) => reject(error));
      });
      await ended;
      expect(statuses).toEqual(["SERVING", "NOT_SERVING"]);
      // Ending the watches lets shutdown finish by itself, with status 0.
      expect(await own.process.exited).toBe(0);
      health.close();
    } finally {
      await own.cleanup();
    }
  });
});

describe("reflection (grpc.reflection.v1)", () => {
  test("buf curl lists the services and calls GetJobs with no schema of its own", async () => {
    const listed = await bufCurl(daemon, ["--list-services", `https://${daemon.address}`]);
    expect(listed.stdout.trim().split("\n")).toContain("jobber.v1.JobService");

    const { job } = await daemon.client().startJob({ args: ["true"] });
    const called = await bufCurl(daemon, [
      "-d",
      "{}",
      `https://${daemon.address}/jobber.v1.JobService/GetJobs`,
    ]);
    expect(called.exitCode).toBe(0);
    const jobs = JSON.parse(called.stdout).jobs as { id: string; command: string }[];
    expect(jobs).toContainEqual(expect.objectContaining({ id: String(job?.id), command: "true" }));
  });

  test("like the job API, it answers no one without a certificate in the pool", async () => {
    const refused = await bufCurl(
      daemon,
      ["--list-services", "--reflect-protocol", "grpc-v1", `https://${daemon.address}`],
      false,
    );
    expect(refused.exitCode).not.toBe(0);
    await daemon.waitForLog(
      /ServerReflectionInfo UNAUTHENTICATED tenant=- ms=[\d.]+ error="no client certificate/,
    );
  });
});

describe("metrics (--metrics-listen)", () => {
  test("jobs started, running and finished by status, RPC latency by method and code, open follows, the process", async () => {
    const client = daemon.client();
    const before = await scrape(daemon);
    const startedBefore = sample(before, "jobber_jobs_started_total") ?? 0;
    const exitedBefore = sample(before, 'jobber_jobs_finished_total{status="exited"}') ?? 0;

    const { job } = await client.startJob({ args: ["sh", "-c", "echo ready; sleep 1000"] });
    const jobId = job?.id as bigint;
    // A follow that stays open while we scrape: once its first bytes arrived, the daemon counts it.
    const follow = new AbortController();
    const chunks = client.followJobLog({ jobId }, { signal: follow.signal })[Symbol.asyncIterator]();
    expect(Buffer.from((await chunks.next()).value as Uint8Array).toString()).toBe("ready\n");
    const following = chunks.next().catch(() => undefined);
    const during = await scrape(daemon);
    expect(sample(during, "jobber_follow_streams_open")).toBe(1);
    expect(sample(during, "jobber_jobs_running")).toBeGreaterThanOrEqual(1);
    expect(sample(during, "jobber_jobs_started_total")).toBe(startedBefore + 1);

    await client.stopJob({ jobId });
    follow.abort();
    await following;
    await client.getJob({ jobId: 999_999n }).catch(() => undefined);
    const { job: quick } = await client.startJob({ args: ["true"] });
    await collect(client.followJobLog({ jobId: quick?.id as bigint }));
    await daemon.waitForLog(
      new RegExp(`job ended tenant=[0-9a-f]{12} id=${quick?.id} status=exited exit_code=0`),
    );

    const after = await scrape(daemon);
    expect(sample(after, 'jobber_jobs_finished_total{status="stopped"}')).toBeGreaterThanOrEqual(1);
    expect(sample(after, 'jobber_jobs_finished_total{status="exited"}')).toBe(exitedBefore + 1);
    expect(
      sample(after, 'jobber_rpc_duration_seconds_count{method="StartJob",code="OK"}'),
    ).toBeGreaterThanOrEqual(2);
    expect(sample(after, 'jobber_rpc_duration_seconds_count{method="GetJob",code="NOT_FOUND"}')).toBe(1);
    expect(sample(after, 'jobber_rpc_duration_seconds_bucket{le="+Inf",method="StopJob",code="OK"}')).toBe(1);
    expect(sample(after, "jobber_follow_streams_open")).toBe(0);
    expect(sample(after, "process_resident_memory_bytes")).toBeGreaterThan(0);
    expect(sample(after, "process_open_fds")).toBeGreaterThan(0);
  });
});

describe("log", () => {
  test("text: a timestamp on every line, one line per job start and end, client errors at INFO", async () => {
    const client = daemon.client();
    const { job } = await client.startJob({ args: ["sh", "-c", "exit 3"] });
    await collect(client.followJobLog({ jobId: job?.id as bigint }));
    await client.getJob({ jobId: 424_242n }).catch(() => undefined);
    const ended = await daemon.waitForLog(
      new RegExp(`^.* job ended tenant=[0-9a-f]{12} id=${job?.id} .*$`, "m"),
    );
    expect(ended).toMatch(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO {2}job ended .*status=exited exit_code=3 duration_ms=\d+$/,
    );
    await daemon.waitForLog(
      /INFO {2}GetJob NOT_FOUND tenant=[0-9a-f]{12} ms=[\d.]+ error="job 424242 not found"/,
    );
    expect(daemon.output()).toMatch(
      new RegExp(`INFO  job started tenant=[0-9a-f]{12} id=${job?.id} command="sh -c 'exit 3'"`),
    );
    // Every line is written (no "repeated N times").
    await Promise.all(
      Array.from({ length: 8 }, () => client.getJob({ jobId: 424_242n }).catch(() => undefined)),
    );
    expect(daemon.output()).not.toContain("repeated");
    const lines = daemon.output().trim().split("\n");
    for (const line of lines)
      expect(line).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO |WARN |ERROR)/);
  });

  test("--log-format json: one object a line with time, level, msg and fields", async () => {
    const own = await startDaemonProcess(["--log-format", "json"]);
    try {
      const client = own.client();
      const { job } = await client.startJob({ args: ["sh", "-c", "kill -TERM $$"] });
      await collect(client.followJobLog({ jobId: job?.id as bigint }));
      await client.getJob({ jobId: 77n }).catch(() => undefined);
      await own.waitForLog(/"msg":"GetJob NOT_FOUND"/);
      await own.waitForLog(/"msg":"job ended"/);
      const records = own
        .output()
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line));
      for (const record of records) {
        expect(Object.keys(record)).toEqual(expect.arrayContaining(["time", "level", "msg"]));
        expect(new Date(record.time).toISOString()).toBe(record.time);
      }
      expect(records).toContainEqual(
        expect.objectContaining({ level: "info", msg: "GetJob NOT_FOUND", error: "job 77 not found" }),
      );
      expect(records).toContainEqual(
        expect.objectContaining({
          level: "info",
          msg: "job ended",
          id: Number(job?.id),
          status: "killed",
          signal: "SIGTERM",
        }),
      );
    } finally {
      await own.cleanup();
    }
  });
});

describe("config file and flags", () => {
  test("every key is a flag; a flag on the command line wins over the file; lists are arrays", async () => {
    const config = join(scratch, "jobberd.toml");
    const cgroupParent = `jobber-test-${process.pid}-config`;
    // listen and cgroup-parent come from the file; san is an array; log-format is overridden by a flag.
    writeFileSync(
      config,
      [
        `cgroup-parent = "${cgroupParent}"`,
        `metrics-listen = "127.0.0.1:0"`,
        `log-format = "text"`,
        `stop-grace = 1`,
        `san = ["jobs.example.test", "127.0.0.2"]`,
      ].join("\n"),
    );
    const own = await startDaemonProcess([
      "--config",
      config,
      "--log-format",
      "json",
      "--cgroup-parent",
      cgroupParent,
    ]);
    try {
      // The flag won: JSON lines; the file's metrics-listen took effect.
      const first = JSON.parse(own.output().split("\n")[0] as string);
      expect(first.msg).toContain("created a CA");
      expect(own.output()).toContain("metrics at http://127.0.0.1:");
      const san = new (await import("node:crypto")).X509Certificate(
        readFileSync(join(own.home, "server.crt")),
      );
      expect(san.subjectAltName).toContain("DNS:jobs.example.test");
      expect(san.subjectAltName).toContain("IP Address:127.0.0.2");
    } finally {
      await own.cleanup();
      removeCgroupParent(cgroupParent);
    }
  });

  test("an unknown key, a wrong type or bad TOML is one line naming the file, exit 2", async () => {
    const cases = [
      [
        'listen-on = "x"',
        'unknown key "listen-on"; keys are the flags without dashes: listen, home, state-dir',
      ],
      ["san = 5", "san must be an array of strings"],
      ['listen = ["a", "b"]', "listen must be a single value"],
      ["listen = ", "not valid TOML"],
    ];
    for (const [text, message] of cases) {
      const file = join(scratch, "bad.toml");
      writeFileSync(file, text as string);
      const result = await runJobberd(["--config", file]);
      expect(result.exitCode).toBe(2);
      expect(result.stderr.trim().split("\n")).toEqual([
        expect.stringContaining(`--config ${file}: ${message}`),
      ]);
    }
    const missing = await runJobberd(["--config", join(scratch, "nope.toml")]);
    expect(missing.stderr).toContain("no such file");
  });

  test("--version, and --help without colour codes when piped", async () => {
    const version = await runJobberd(["--version"]);
    const packageVersion = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version;
    expect(version).toEqual({ stdout: `jobberd ${packageVersion}\n`, stderr: "", exitCode: 0 });
    const help = await runJobberd(["--help"], { FORCE_COLOR: "1" });
    expect(help.exitCode).toBe(0);
    expect(help.stdout).not.toContain("\x1b[");
    for (const flag of ["--config", "--log-format", "--metrics-listen", "--san", "issue-client"]) {
      expect(help.stdout).toContain(flag);
    }
    const unknown = await runJobberd(["--no-such-flag"]);
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr.trim().split("\n")).toEqual([expect.stringContaining("--no-such-flag")]);
  });

  test("a busy port is one line saying so, exit 1", async () => {
    const home = join(mkdtempSync(join(scratch, "busy-")), "home");
    const result = await runJobberd([
      ...["--listen", daemon.address, "--home", home, "--state-dir", join(home, "..", "state")],
      ...["--cgroup-parent", `jobber-test-${process.pid}-busy`],
    ]);
    removeCgroupParent(`jobber-test-${process.pid}-busy`);
    expect(result.exitCode).toBe(1);
    const lines = result.stderr
      .trim()
      .split("\n")
      .filter((line) => !line.includes("created a CA"));
    expect(lines).toEqual([
      expect.stringMatching(
        new RegExp(
          `ERROR cannot listen on ${daemon.address}: the address is already in use \\(another jobberd`,
        ),
      ),
    ]);
  });
});

describe("contrib/systemd", () => {
  test("the sample config starts jobberd (with the test's own directories and ports)", async () => {
    const own = await startDaemonProcess([
      ...["--config", join(ROOT, "contrib/systemd/jobberd.toml"), "--metrics-listen", "127.0.0.1:0"],
    ]);
    try {
      // The file's log-format and san took effect.
      expect(JSON.parse(own.output().split("\n")[0] as string).msg).toContain("created a CA");
      const cert = new (await import("node:crypto")).X509Certificate(
        readFileSync(join(own.home, "server.crt")),
      );
      expect(cert.subjectAltName).toContain("DNS:jobs.example.com");
    } finally {
      await own.cleanup();
    }
  });

  test("the unit file passes systemd-analyze verify", async () => {
    const unit = join(scratch, "jobberd.service");
    const text = readFileSync(join(ROOT, "contrib/systemd/jobberd.service"), "utf8");
    // verify wants the binary to exist: any executable stands in for it.
    writeFileSync(unit, text.replaceAll("/usr/local/bin/jobberd", process.execPath));
    const verify = Bun.spawnSync(["systemd-analyze", "verify", unit], { stderr: "pipe" });
    expect(verify.stderr.toString()).toBe("");
    expect(verify.exitCode).toBe(0);
  });
});

describe("bootstrap and identities", () => {
  test("without --san a client dialing another address is refused; with it, it gets in", async () => {
    // 127.0.0.2 is loopback too, but not in the default certificate.
    const plain = await startDaemonProcess([], undefined, "127.0.0.2:0");
    const named = await startDaemonProcess(["--san", "127.0.0.2"], undefined, "127.0.0.2:0");
    try {
      const refused = connectJobService({ addr: plain.address, home: plain.home });
      await expect(refused.getJobs({}, { deadline: new Date(Date.now() + 10_000) })).rejects.toMatchObject({
        code: 14,
        details: expect.stringMatching(/127\.0\.0\.2|altnames|certificate/i),
      });
      refused.close();
      const client = connectJobService({ addr: named.address, home: named.home });
      expect((await client.getJobs()).jobs).toEqual([]);
      client.close();
    } finally {
      await plain.cleanup();
      await named.cleanup();
    }
  });

  test("issue-client --owner hands the identity to that user, still private", async () => {
    const out = join(mkdtempSync(join(TEST_ROOT, "owned-")), "alice");
    try {
      const result = await runJobberd([
        "issue-client",
        "alice",
        "--out",
        out,
        "--owner",
        "nobody",
        "--home",
        daemon.home,
      ]);
      expect(result.exitCode).toBe(0);
      expect(result.stderr).toContain(`owned by nobody; use it with: jb --home ${out} list`);
      const nobody = readFileSync("/etc/passwd", "utf8")
        .split("\n")
        .find((line) => line.startsWith("nobody:"))
        ?.split(":") as string[];
      for (const [path, mode] of [
        [out, 0o700],
        [join(out, "client.key"), 0o600],
        [join(out, "client.crt"), 0o644],
        [join(out, "ca.crt"), 0o644],
      ] as const) {
        const stat = statSync(path);
        expect({ path, uid: stat.uid, gid: stat.gid, mode: stat.mode & 0o777 }).toEqual({
          path,
          uid: Number(nobody[2]),
          gid: Number(nobody[3]),
          mode,
        });
      }
      // And it works: the identity is in the pool.
      const client = connectJobService({ addr: daemon.address, home: out });
      await daemon.waitForLog(/client pool reloaded/);
      expect((await client.getJobs()).jobs).toEqual([]);
      client.close();
    } finally {
      rmSync(join(out, ".."), { recursive: true, force: true });
    }
  });
});
