// jb end to end: the real CLI as a subprocess against a real jobberd (real
// mTLS, cgroups and namespaces), checked through its output and exit codes,
// and through the API where jb's word is not enough.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { copyFile, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { connectJobService, type JobClient, JobStatus } from "@jobber/proto";
import { selfSignedClient } from "../../daemon/test/certs";
import { collect, type DaemonProcess, startDaemonProcess, TEST_ROOT } from "../../daemon/test/fixture";
import { runJb, spawnJb, stderrLines } from "./run-jb";

let daemon: DaemonProcess;
let client: JobClient;
/** --home and --addr of the daemon's first client. */
let connection: string[];
let scratch: string;
/** Directories made for a test outside `scratch`, removed at the end. */
const extraDirs: string[] = [];

beforeAll(async () => {
  daemon = await startDaemonProcess();
  client = daemon.client();
  connection = ["--home", daemon.home, "--addr", daemon.address];
  scratch = mkdtempSync(join(TEST_ROOT, "jb-test-"));
});

afterAll(async () => {
  await daemon.cleanup();
  for (const dir of [scratch, ...extraDirs]) rmSync(dir, { recursive: true, force: true });
});

const TIME = /\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}/g;
/** The table with each time replaced by a placeholder of the same width, so it can be compared whole. */
const withoutTimes = (text: string) => text.replace(TIME, "YYYY-MM-DD hh:mm:ss");

/** `jb start -q`: the new job's id. */
async function startQuiet(...argv: string[]): Promise<bigint> {
  const result = await runJb(["start", "-q", ...connection, "--", ...argv]);
  expect(result.exitCode).toBe(0);
  return BigInt(result.stdout.toString().trim());
}

/** Waits, through the API, until the job has ended (its output stream ends then). */
async function waitForEnd(id: bigint) {
  await collect(client.followJobLog({ jobId: id }));
  return (await client.getJob({ jobId: id })).job;
}

/** Asserts a failure: nothing on stdout, one line on stderr containing `message`, the exit code. */
function expectOneLineError(result: Awaited<ReturnType<typeof runJb>>, message: string, exitCode = 1) {
  expect(result.stdout.toString()).toBe("");
  const lines = stderrLines(result.stderr);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toContain(message);
  expect(result.exitCode).toBe(exitCode);
}

describe("tables", () => {
  test("start prints the original jb's table with the new job running", async () => {
    const result = await runJb(["start", ...connection, "--", "sleep", "1000"]);
    expect(result.exitCode).toBe(0);
    const id = /^\| (\d+) /m.exec(result.stdout.toString())?.[1] as string;
    expect(withoutTimes(result.stdout.toString())).toBe(
      [
        "Job started:",
        "+---------------+---------------+---------------------+---------------+",
        "| ID            | Command       | Created             | Status        |",
        "+---------------+---------------+---------------------+---------------+",
        `| ${id.padEnd(13)} | sleep 1000    | YYYY-MM-DD hh:mm:ss | Running       |`,
        "+---------------+---------------+---------------------+---------------+",
        "",
      ].join("\n"),
    );
    await client.stopJob({ jobId: BigInt(id) });
  });

  test("list: a friendly line when there are none, then the original jb's table, oldest first", async () => {
    const home = await daemon.issueClient("lister");
    // issueClient makes <temp>/home; the fixture's cleanup does not know it.
    extraDirs.push(join(home, ".."));
    const own = ["--home", home, "--addr", daemon.address];
    const empty = await runJb(["list", ...own]);
    expect(empty).toMatchObject({ exitCode: 0, stderr: "" });
    expect(empty.stdout.toString()).toBe("No jobs found.\n");

    const first = (await runJb(["start", "-q", ...own, "--", "echo", "hello world"])).stdout
      .toString()
      .trim();
    const second = (await runJb(["start", "-q", ...own, "--", "sh", "-c", "exit 3"])).stdout
      .toString()
      .trim();
    const ownClient = connectJobService({ addr: daemon.address, home });
    try {
      for (const id of [first, second]) await collect(ownClient.followJobLog({ jobId: BigInt(id) }));
    } finally {
      ownClient.close();
    }

    const result = await runJb(["list", ...own]);
    expect(result.exitCode).toBe(0);
    expect(withoutTimes(result.stdout.toString())).toBe(
      [
        "Jobs found:",
        "+---------------+--------------------+---------------------+---------------+",
        "| ID            | Command            | Created             | Status        |",
        "+---------------+--------------------+---------------------+---------------+",
        `| ${first.padEnd(13)} | echo 'hello world' | YYYY-MM-DD hh:mm:ss | Exited (0)    |`,
        "+---------------+--------------------+---------------------+---------------+",
        `| ${second.padEnd(13)} | sh -c 'exit 3'     | YYYY-MM-DD hh:mm:ss | Exited (3)    |`,
        "+---------------+--------------------+---------------------+---------------+",
        "",
      ].join("\n"),
    );
  });

  test("status and stop print the original jb's table; Killed shows the signal", async () => {
    const id = await startQuiet("sleep", "1000");
    const running = await runJb(["status", ...connection, String(id)]);
    expect(withoutTimes(running.stdout.toString())).toBe(
      [
        "Job status:",
        "+---------------+---------------+---------------------+---------------+",
        "| ID            | Command       | Created             | Status        |",
        "+---------------+---------------+---------------------+---------------+",
        `| ${String(id).padEnd(13)} | sleep 1000    | YYYY-MM-DD hh:mm:ss | Running       |`,
        "+---------------+---------------+---------------------+---------------+",
        "",
      ].join("\n"),
    );

    const stopped = await runJb(["stop", ...connection, String(id)]);
    expect(stopped.exitCode).toBe(0);
    expect(withoutTimes(stopped.stdout.toString())).toBe(
      [
        "Job stopped:",
        "+---------------+---------------+---------------------+---------------+",
        "| ID            | Command       | Created             | Status        |",
        "+---------------+---------------+---------------------+---------------+",
        `| ${String(id).padEnd(13)} | sleep 1000    | YYYY-MM-DD hh:mm:ss | Stopped       |`,
        "+---------------+---------------+---------------------+---------------+",
        "",
      ].join("\n"),
    );

    const killed = await startQuiet("sh", "-c", "kill -KILL $$");
    await waitForEnd(killed);
    const status = await runJb(["status", ...connection, String(killed)]);
    expect(status.stdout.toString()).toMatch(
      /\| sh -c 'kill -KILL \$\$' +\| [-\d: ]+ \| Killed \(SIGKILL\) \|\n/,
    );
  });
});

describe("JSON and -q", () => {
  test("start -json and --json print one JSON document", async () => {
    for (const flag of ["-json", "--json"]) {
      const result = await runJb([
        "start",
        flag,
        "--memory",
        "64M",
        "--cpus",
        "0.5",
        ...connection,
        "--",
        "sleep",
        "600",
      ]);
      expect(result.exitCode).toBe(0);
      const job = JSON.parse(result.stdout.toString());
      // Still running when the answer comes: a job that ends at once may be over by then.
      await runJb(["stop", String(job.id), ...connection]);
      expect(job).toMatchObject({
        command: "sleep 600",
        args: ["sleep", "600"],
        status: "running",
        finished: false,
        exit_code: null,
        signal: null,
        finished_at: null,
        limits: { cpus: 0.5, memory_bytes: 64 * 1024 * 1024 },
      });
      expect(job.id).toBeNumber();
      expect(Date.parse(job.created_at)).not.toBeNaN();
    }
  });

  test("list, status and stop -json parse; ids are numbers everywhere", async () => {
    const id = await startQuiet("sh", "-c", "exit 5");
    await waitForEnd(id);
    const listed = JSON.parse((await runJb(["list", "-json", ...connection])).stdout.toString());
    expect(listed).toBeArray();
    expect(listed.find((job: { id: number }) => job.id === Number(id))).toMatchObject({
      status: "exited",
      exit_code: 5,
      finished: true,
    });

    const status = JSON.parse(
      (await runJb(["status", "--json", ...connection, String(id)])).stdout.toString(),
    );
    expect(status).toMatchObject({ id: Number(id), status: "exited", exit_code: 5 });
    expect(Date.parse(status.finished_at)).not.toBeNaN();

    const running = await startQuiet("sleep", "1000");
    const stopped = JSON.parse(
      (await runJb(["stop", "-json", ...connection, String(running)])).stdout.toString(),
    );
    expect(stopped).toMatchObject({ id: Number(running), status: "stopped", finished: true });
  });

  test("-q prints only the id", async () => {
    const result = await runJb(["start", "-q", ...connection, "--", "true"]);
    expect(result.stdout.toString()).toMatch(/^\d+\n$/);
    expect(result.stderr).toBe("");
  });

  test("JOBBER_HOME and JOBBER_ADDR stand in for --home and --addr", async () => {
    const result = await runJb(["list", "-json"], {
      env: { JOBBER_HOME: daemon.home, JOBBER_ADDR: daemon.address },
    });
    expect(result.exitCode).toBe(0);
    expect(JSON.parse(result.stdout.toString())).toBeArray();
  });
});

describe("output", () => {
  test("start -f passes the job's bytes through exactly (NUL, invalid UTF-8, no newline added)", async () => {
    const result = await runJb(["start", "-f", ...connection, "--", "printf", "\\000\\377\\200end"]);
    expect(result.stdout).toEqual(Buffer.from([0, 0xff, 0x80, ...Buffer.from("end")]));
    expect(result.exitCode).toBe(0);
  });

  test("start -f exits with the job's exit code", async () => {
    const result = await runJb(["start", "-f", ...connection, "--", "sh", "-c", "echo out; exit 3"]);
    expect(result.stdout.toString()).toBe("out\n");
    expect(result.exitCode).toBe(3);
  });

  test("start -f exits 128 + signal when a signal ended the job (137 for SIGKILL)", async () => {
    const result = await runJb(["start", "-f", ...connection, "--", "sh", "-c", "kill -KILL $$"]);
    expect(result.exitCode).toBe(137);
    expect(result.stderr).toContain("was killed by SIGKILL");
  });

  test("start -f exits 137 after an OOM kill at the memory limit, and says so", async () => {
    // tail -n 1 keeps a line in memory, and /dev/zero has no newline.
    const result = await runJb([
      "start",
      "-f",
      "--memory",
      "16M",
      ...connection,
      "--",
      "sh",
      "-c",
      "head -c 200M /dev/zero | tail -n 1",
    ]);
    expect(result.exitCode).toBe(137);
    expect(result.stderr).toContain("killed by the OOM killer at its memory limit (16 MiB)");
  });

  test("a reader that goes away (| head) ends jb quietly with 141, like cat", async () => {
    const jb = `bun ${join(import.meta.dir, "../src/main.ts")} start -f ${connection.join(" ")} -- sh -c 'yes | head -c 50000000'`;
    const pipeline = Bun.spawn(["bash", "-c", `set -o pipefail; ${jb} | head -c 4`], {
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, stderr, exitCode] = await Promise.all([
      new Response(pipeline.stdout).text(),
      new Response(pipeline.stderr).text(),
      pipeline.exited,
    ]);
    expect(stdout).toBe("y\ny\n");
    expect(stderr).toBe("");
    expect(exitCode).toBe(141);
  });

  test("start -f with limits: the command after the options is run as given", async () => {
    const result = await runJb([
      "start",
      "-f",
      "--pids",
      "50",
      "--io-write",
      "10M/s",
      ...connection,
      "echo",
      "hello",
      "--json",
      "-q",
    ]);
    expect(result.stdout.toString()).toBe("hello --json -q\n");
    expect(result.exitCode).toBe(0);
  });

  test("log prints the snapshot, byte for byte", async () => {
    const id = await startQuiet("sh", "-c", "printf 'line 1\\nline 2\\n\\000\\377'");
    await waitForEnd(id);
    const result = await runJb(["log", ...connection, String(id)]);
    expect(result.stdout).toEqual(Buffer.concat([Buffer.from("line 1\nline 2\n"), Buffer.from([0, 0xff])]));
    expect(result.exitCode).toBe(0);
  });

  test("log -f on a running job streams until the job ends", async () => {
    // The job prints, then waits; a stop's SIGTERM makes it print again and exit.
    const id = await startQuiet("sh", "-c", "trap 'echo second; exit 0' TERM; echo first; sleep 1000 & wait");
    const follower = spawnJb(["log", "-f", ...connection, String(id)]);
    await follower.waitFor((stdout) => stdout.toString() === "first\n", "the first line");
    expect(follower.process.exitCode).toBeNull();
    await client.stopJob({ jobId: id });
    expect(await follower.exited).toBe(0);
    expect(follower.stdout().toString()).toBe("first\nsecond\n");
  });

  test("Ctrl+C during start -f detaches: exit 130, a hint on stderr, the job keeps running", async () => {
    const follower = spawnJb(["start", "-f", ...connection, "--", "sh", "-c", "echo ready; exec sleep 1000"]);
    await follower.waitFor((stdout) => stdout.toString() === "ready\n", "the job's first line");
    follower.process.kill("SIGINT");
    expect(await follower.exited).toBe(130);
    const lines = stderrLines(follower.stderr());
    expect(lines).toHaveLength(1);
    const id = /detached; job (\d+) keeps running/.exec(lines[0] as string)?.[1];
    expect(id).toBeDefined();
    expect(lines[0]).toContain(`jb log -f ${id} to follow again, jb stop ${id} to stop it`);
    const { job } = await client.getJob({ jobId: BigInt(id as string) });
    expect(job?.status).toBe(JobStatus.RUNNING);
    await client.stopJob({ jobId: BigInt(id as string) });
  });

  test("Ctrl+C during log -f detaches too", async () => {
    const id = await startQuiet("sh", "-c", "echo ready; exec sleep 1000");
    const follower = spawnJb(["log", "-f", ...connection, String(id)]);
    await follower.waitFor((stdout) => stdout.toString() === "ready\n", "the job's first line");
    follower.process.kill("SIGINT");
    expect(await follower.exited).toBe(130);
    expect(follower.stderr()).toContain(`detached; job ${id} keeps running`);
    expect((await client.getJob({ jobId: id })).job?.status).toBe(JobStatus.RUNNING);
    await client.stopJob({ jobId: id });
  });
});

describe("errors: one line on stderr, non-zero exit, what to do next", () => {
  test("daemon not running", async () => {
    // A port that was free a moment ago: nothing listens there.
    const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const address = `127.0.0.1:${probe.port}`;
    probe.stop(true);
    const result = await runJb(["list", "--home", daemon.home, "--addr", address]);
    expectOneLineError(result, `cannot reach jobberd at ${address}`);
    expect(result.stderr).toContain("is it running? start it with: sudo ./scripts/bun run jobberd");
  });

  test("certificate not in the server's pool", async () => {
    const home = join(scratch, "stranger");
    await mkdir(home);
    const identity = await selfSignedClient();
    await writeFile(join(home, "client.crt"), identity.certPem);
    await writeFile(join(home, "client.key"), identity.keyPem);
    await copyFile(join(daemon.home, "ca.crt"), join(home, "ca.crt"));
    const result = await runJb(["list", "--home", home, "--addr", daemon.address]);
    expectOneLineError(result, `did not accept the certificate in ${home}`);
    expect(result.stderr).toContain(`client certificate ${identity.hash} is not in the server's pool`);
  });

  test("a server certificate the home's ca.crt does not vouch for", async () => {
    const home = join(scratch, "wrong-ca");
    await mkdir(home);
    await copyFile(join(daemon.home, "client.crt"), join(home, "client.crt"));
    await copyFile(join(daemon.home, "client.key"), join(home, "client.key"));
    await writeFile(join(home, "ca.crt"), (await selfSignedClient()).certPem);
    const result = await runJb(["list", "--home", home, "--addr", daemon.address]);
    expectOneLineError(result, `TLS with jobberd at ${daemon.address} failed`);
    expect(result.stderr).toContain(`check that ${home}/ca.crt is the CA of that server's certificate`);
  });

  test("missing identity files", async () => {
    const home = join(scratch, "empty-home");
    await mkdir(home);
    const result = await runJb(["list", "--home", home, "--addr", daemon.address]);
    expectOneLineError(result, `${home}/client.crt: not found`);
    expect(result.stderr).toContain("point --home or JOBBER_HOME at a client home");
  });

  test("unusable identity files", async () => {
    const home = join(scratch, "garbled-home");
    await mkdir(home);
    for (const file of ["client.crt", "client.key", "ca.crt"]) writeFileSync(join(home, file), "not PEM\n");
    const result = await runJb(["list", "--home", home, "--addr", daemon.address]);
    expectOneLineError(result, `cannot use the identity in ${home}`);
  });

  test("unknown job id", async () => {
    const result = await runJb(["status", ...connection, "999999"]);
    expectOneLineError(result, "job 999999 not found; jb list shows your jobs");
  });

  test("stopping a finished job", async () => {
    const id = await startQuiet("true");
    await waitForEnd(id);
    const result = await runJb(["stop", ...connection, String(id)]);
    expectOneLineError(result, `job ${id} has already finished`);
  });

  test("a command the daemon cannot find exits 127, one it cannot execute 126, like docker run", async () => {
    const notFound = await runJb(["start", ...connection, "--", "no-such-command-here"]);
    expectOneLineError(notFound, "command not found: no-such-command-here", 127);
    const followed = await runJb(["start", "-f", ...connection, "--", "no-such-command-here"]);
    expectOneLineError(followed, "command not found: no-such-command-here", 127);
    // /etc/passwd exists and is readable, but nobody may execute it.
    const notExecutable = await runJb(["start", ...connection, "--", "/etc/passwd"]);
    expectOneLineError(notExecutable, "not an executable file", 126);
    // Executable, but no format the kernel knows: the job starts and fails at execve; -f exits 126.
    const dir = mkdtempSync("/var/lib/jobber-program-");
    extraDirs.push(dir);
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, "garbage"), "\x7fnot an ELF\n", { mode: 0o755 });
    const failed = await runJb(["start", "-f", ...connection, "--", join(dir, "garbage")]);
    expect(failed.exitCode).toBe(126);
    expect(stderrLines(failed.stderr)).toEqual([
      expect.stringContaining("failed to start: exec failed: ENOEXEC"),
    ]);
  });

  test("bad limit syntax is caught before any call (exit 2)", async () => {
    const result = await runJb(["start", "--memory", "12XB", "--addr", "127.0.0.1:1", "--", "true"]);
    expectOneLineError(result, `invalid --memory "12XB": use a size like 256M or 1G`, 2);
  });

  test("a non-numeric id (exit 2)", async () => {
    const result = await runJb(["stop", ...connection, "abc"]);
    expectOneLineError(result, `invalid job id "abc"`, 2);
  });

  test("unknown options and commands (exit 2)", async () => {
    expectOneLineError(await runJb(["list", "--jsn"]), "unknown option --jsn for jb list", 2);
    expectOneLineError(await runJb(["lsit"]), `unknown command "lsit"`, 2);
    expectOneLineError(await runJb(["start"]), "jb start needs a command", 2);
  });
});

describe("the log cap and jb rm", () => {
  test("a job stopped at its --log cap: jb status says the log was truncated, -json has log_truncated", async () => {
    const started = await runJb(["start", "-q", "--log", "64K", ...connection, "--", "yes"]);
    const id = BigInt(started.stdout.toString().trim());
    expect((await waitForEnd(id))?.logTruncated).toBe(true);
    const table = await runJb(["status", ...connection, String(id)]);
    expect(table.exitCode).toBe(0);
    expect(table.stdout.toString()).toMatch(
      new RegExp(`\\| ${id} +\\| yes +\\| [^|]+\\| Exited \\(1\\), log truncated \\|`),
    );
    const json = JSON.parse((await runJb(["status", "-json", ...connection, String(id)])).stdout.toString());
    expect(json).toMatchObject({ status: "exited", exit_code: 1, log_truncated: true });
    expect(json.limits.log_bytes).toBe(64 * 1024);
    // jb start -f says so too, after the output.
    const followed = await runJb(["start", "-f", "--log", "1K", ...connection, "--", "yes"]);
    expect(followed.stdout.length).toBe(1024);
    expect(followed.stderr).toContain("log reached its cap (1 KiB): output past it was dropped");
  });

  test("jb rm removes finished jobs, says which it could not, and exits 1 if any", async () => {
    const done = await startQuiet("echo", "bye");
    await waitForEnd(done);
    const running = await startQuiet("sleep", "1000");
    const result = await runJb(["rm", ...connection, String(done), String(running), "999999"]);
    expect(result.stdout.toString()).toBe(`${done}\n`);
    const errors = stderrLines(result.stderr);
    expect(errors).toHaveLength(2);
    expect(errors[0]).toContain(`job ${running} is running: stop it first`);
    expect(errors[1]).toContain("job 999999 not found");
    expect(result.exitCode).toBe(1);
    expectOneLineError(await runJb(["status", ...connection, String(done)]), `job ${done} not found`);
    await client.stopJob({ jobId: running });
    const again = await runJb(["rm", ...connection, String(running)]);
    expect(again.stdout.toString()).toBe(`${running}\n`);
    expect(again.exitCode).toBe(0);
    expectOneLineError(await runJb(["rm", ...connection]), "jb rm needs job ids", 2);
  });

  test("a limit over the daemon's maximum is one line naming the maximum", async () => {
    expectOneLineError(
      await runJb(["start", "--memory", "100000G", ...connection, "--", "true"]),
      "limit memoryBytes 97.7 TiB is over the maximum per job, max-memory = ",
    );
  });
});

describe("help", () => {
  test("jb --help lists the commands; each command's help has examples", async () => {
    const root = await runJb(["--help"]);
    expect(root.exitCode).toBe(0);
    for (const command of ["start", "list", "status", "log", "stop"]) {
      expect(root.stdout.toString()).toContain(command);
      const help = await runJb([command, "-h"]);
      expect(help.exitCode).toBe(0);
      expect(help.stdout.toString()).toContain(`USAGE jb ${command} [OPTIONS]`);
      expect(help.stdout.toString()).toContain("EXAMPLES");
      // Not a terminal: no colour codes.
      expect(help.stdout.toString()).not.toContain("\u001b[");
    }
    const start = (await runJb(["start", "--help"])).stdout.toString();
    expect(start).toContain("USAGE jb start [OPTIONS] [--] <COMMAND> [ARGS...]");
    expect(start).toContain("binary units");
  });
});

describe("single-file executable", () => {
  test("bun build --compile makes a jb that works", async () => {
    const binary = join(scratch, "jb");
    const build = Bun.spawnSync(
      ["bun", "build", "--compile", join(import.meta.dir, "../src/main.ts"), "--outfile", binary],
      {
        stdout: "pipe",
        stderr: "pipe",
      },
    );
    expect(build.exitCode).toBe(0);
    const help = await runJb(["--help"], { command: [binary] });
    expect(help.exitCode).toBe(0);
    expect(help.stdout.toString()).toContain("USAGE jb");
    const started = await runJb(["start", "-f", ...connection, "--", "sh", "-c", "echo compiled; exit 4"], {
      command: [binary],
    });
    expect(started.stdout.toString()).toBe("compiled\n");
    expect(started.exitCode).toBe(4);
  });
});
