// The habits people bring from docker, kubectl and systemd-run: -e/-w/--timeout,
// list -q, stopping many jobs at once, a log of any size, follows that survive
// a daemon restart, completion scripts, --version, and quiet wrappers.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { JobClient } from "@jobber/proto";
import { collect, type DaemonProcess, startDaemonProcess, TEST_ROOT } from "../../daemon/test/fixture";
import { FollowLostError, followToStdout } from "../src/follow";
import { runJb, spawnJb, stderrLines } from "./run-jb";

const ROOT = resolve(import.meta.dir, "../../..");

let daemon: DaemonProcess;
let client: JobClient;
let connection: string[];
/** A directory jobs can see (so not under TEST_ROOT, which is 0700), for FIFOs and scripts. */
let visible: string;

beforeAll(async () => {
  daemon = await startDaemonProcess();
  client = daemon.client();
  connection = ["--home", daemon.home, "--addr", daemon.address];
  visible = mkdtempSync("/var/lib/jobber-jb-");
  chmodSync(visible, 0o755);
});

afterAll(async () => {
  await daemon.cleanup();
  rmSync(visible, { recursive: true, force: true });
});

/** A FIFO the job (as nobody) can read from: the test releases the job by writing a line to it. */
function fifo(name: string): string {
  const path = join(visible, name);
  expect(Bun.spawnSync(["mkfifo", "-m", "0666", path]).exitCode).toBe(0);
  return path;
}

async function startQuiet(...argv: string[]): Promise<bigint> {
  const result = await runJb(["start", "-q", ...connection, "--", ...argv]);
  expect(result.exitCode).toBe(0);
  return BigInt(result.stdout.toString().trim());
}

describe("start: environment, working directory, timeout", () => {
  test("-e KEY=VALUE, -e KEY from jb's own environment, -w DIR", async () => {
    const result = await runJb(
      [
        "start",
        "-f",
        "-e",
        "A=1 2",
        "-e",
        "FROM_SHELL",
        "-w",
        "/usr",
        ...connection,
        "--",
        "sh",
        "-c",
        'echo "$A|$FROM_SHELL|$PWD"',
      ],
      { env: { FROM_SHELL: "passed along" } },
    );
    expect(result).toMatchObject({ exitCode: 0, stderr: "" });
    expect(result.stdout.toString()).toBe("1 2|passed along|/usr\n");
  });

  test("-e KEY that is not set, and a relative -w, are one-line errors", async () => {
    const unset = await runJb(["start", "-e", "JB_TEST_UNSET_VARIABLE", ...connection, "--", "true"]);
    expect(unset.exitCode).toBe(2);
    expect(stderrLines(unset.stderr)).toEqual([expect.stringContaining("JB_TEST_UNSET_VARIABLE is not set")]);
    const relative = await runJb(["start", "-w", "srv", ...connection, "--", "true"]);
    expect(relative.exitCode).toBe(1);
    expect(relative.stderr).toBe(
      'error: workdir "srv" is not an absolute path (it is a path inside the job\'s view, e.g. /srv/app)\n',
    );
  });

  test("--timeout stops the job; jb start -f exits 124 like timeout(1); status says Timed out", async () => {
    const result = await runJb([
      "start",
      "-f",
      "--timeout",
      "300ms",
      ...connection,
      "--",
      "sh",
      "-c",
      "echo started; exec sleep 1000",
    ]);
    expect(result.stdout.toString()).toBe("started\n");
    expect(result.exitCode).toBe(124);
    expect(stderrLines(result.stderr)).toEqual([
      expect.stringMatching(/^job \d+ was stopped at its timeout \(0\.3 s\)$/),
    ]);
    const id = /^job (\d+)/.exec(result.stderr)?.[1] as string;
    const status = await runJb(["status", "-json", ...connection, id]);
    expect(JSON.parse(status.stdout.toString())).toMatchObject({ status: "timed_out", signal: "SIGTERM" });
    expect((await runJb(["status", ...connection, id])).stdout.toString()).toContain("Timed out");
  });

  test("--timeout takes 90s, 10m, 1h30m; nonsense is a usage error", async () => {
    const accepted = await runJb(["start", "-json", "--timeout", "1h30m", ...connection, "--", "true"]);
    expect(JSON.parse(accepted.stdout.toString()).limits.timeout_seconds).toBe(5400);
    const refused = await runJb(["start", "--timeout", "soon", ...connection, "--", "true"]);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toBe('error: invalid --timeout "soon": use a duration like 90s, 10m or 1h30m\n');
  });
});

describe("list -q and stop of many", () => {
  test("list -q prints the ids, one a line; stop takes several and stops them together", async () => {
    const first = await startQuiet("sleep", "1000");
    const second = await startQuiet("sleep", "1000");
    const ids = (await runJb(["list", "-q", ...connection])).stdout.toString().trim().split("\n");
    expect(ids).toEqual(expect.arrayContaining([String(first), String(second)]));
    expect(ids.every((id) => /^\d+$/.test(id))).toBe(true);

    const stopped = await runJb(["stop", ...connection, String(first), String(second)]);
    expect(stopped).toMatchObject({ exitCode: 0, stderr: "" });
    const table = stopped.stdout.toString();
    expect(table.startsWith("Jobs stopped:\n")).toBe(true);
    expect(table.match(/\| Stopped +\|/g)).toHaveLength(2);
  });

  test("stop with one unknown id stops the others, says which failed, exits 1; -json is an array", async () => {
    const id = await startQuiet("sleep", "1000");
    const result = await runJb(["stop", "-json", ...connection, String(id), "999999"]);
    expect(result.exitCode).toBe(1);
    expect(JSON.parse(result.stdout.toString())).toEqual([
      expect.objectContaining({ id: Number(id), status: "stopped" }),
    ]);
    expect(result.stderr).toBe("error: job 999999 not found; jb list shows your jobs\n");
  });
});

describe("log of any size", () => {
  test("a log larger than one message (64 MiB) is printed whole, streamed", async () => {
    const size = 64 * 1024 * 1024 + 4096;
    const id = await startQuiet("sh", "-c", `head -c ${size} /dev/zero | tr '\\0' x; echo end`);
    const expected = await collect(client.followJobLog({ jobId: id }));
    expect(expected.length).toBe(size + 4);
    const result = await runJb(["log", ...connection, String(id)]);
    expect(result).toMatchObject({ exitCode: 0, stderr: "" });
    expect(result.stdout.length).toBe(expected.length);
    expect(result.stdout.equals(expected)).toBe(true);
  });
});

describe("following across a jobberd restart", () => {
  test("jb log -f and jb start -f reconnect and resume at their offset: no byte lost or repeated", async () => {
    const own = await startDaemonProcess();
    let current = own;
    try {
      const ownConnection = ["--home", own.home, "--addr", own.address];
      const logGate = fifo("log-gate");
      const startGate = fifo("start-gate");
      const ownClient = own.client();
      const { job } = await ownClient.startJob({
        args: ["sh", "-c", `echo one; read x < ${logGate}; echo two`],
      });
      const logFollower = spawnJb(["log", "-f", ...ownConnection, String(job?.id)]);
      const startFollower = spawnJb([
        ...["start", "-f", ...ownConnection, "--"],
        ...["sh", "-c", `printf 'first\\000'; read x < ${startGate}; printf 'second'; exit 3`],
      ]);
      await logFollower.waitFor((stdout) => stdout.toString() === "one\n", "the first line");
      await startFollower.waitFor((stdout) => stdout.toString() === "first\0", "the first bytes");

      expect(await own.terminate()).toBe(0);
      await logFollower.waitFor((_, stderr) => stderr.includes("reconnecting"), "a reconnect note");
      await startFollower.waitFor((_, stderr) => stderr.includes("reconnecting"), "a reconnect note");
      current = await own.restart();

      // The jobs carry on; the followers pick up exactly where they stopped.
      await writeFile(logGate, "go\n");
      await writeFile(startGate, "go\n");
      expect(await logFollower.exited).toBe(0);
      expect(logFollower.stdout().toString()).toBe("one\ntwo\n");
      expect(await startFollower.exited).toBe(3);
      expect(startFollower.stdout()).toEqual(Buffer.from("first\0second"));
      for (const follower of [logFollower, startFollower]) {
        expect(stderrLines(follower.stderr())).toEqual([
          expect.stringMatching(/^jobberd went away \(status 14\); reconnecting to resume at byte (4|6)$/),
        ]);
      }
    } finally {
      await current.cleanup();
      if (current !== own) await own.cleanup();
    }
  });

  test("retries are bounded: then a clear error naming the offset", async () => {
    const unavailable = Object.assign(new Error("14 UNAVAILABLE"), {
      code: 14,
      details: "connect ECONNREFUSED",
    });
    let calls = 0;
    const written: Uint8Array[] = [];
    const fake = {
      followJobLog: async function* (request: { offset: bigint }) {
        calls++;
        if (calls === 1) yield new Uint8Array([104, 105]);
        expect(request.offset).toBe(calls === 1 ? 0n : 2n);
        throw unavailable;
      },
    } as unknown as JobClient;
    const attempt = followToStdout(fake, 1n, {
      retry: { delaysMs: [0, 0, 0] },
      write: async (chunk) => void written.push(chunk),
    });
    await expect(attempt).rejects.toBeInstanceOf(FollowLostError);
    await expect(attempt).rejects.toMatchObject({ offset: 2n });
    // The first stream and three retries; "hi" written once.
    expect(calls).toBe(4);
    expect(Buffer.concat(written).toString()).toBe("hi");
  });
});

describe("shell habits", () => {
  test("bash completion completes commands, options and job ids", async () => {
    const script = (await runJb(["completion", "bash"])).stdout.toString();
    // A `jb` on PATH for the id completion, talking to the test daemon.
    const bin = mkdtempSync(join(TEST_ROOT, "jb-bin-"));
    try {
      writeFileSync(
        join(bin, "jb"),
        `#!/bin/sh\nexec bun ${join(ROOT, "apps/jb/src/main.ts")} --home ${daemon.home} --addr ${daemon.address} "$@"\n`,
        { mode: 0o755 },
      );
      const id = await startQuiet("true");
      const complete = (words: string) =>
        Bun.spawnSync(
          [
            "bash",
            "-c",
            `${script}\nCOMP_WORDS=(${words}); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); _jb; printf '%s\\n' "\${COMPREPLY[@]}"`,
          ],
          { env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } },
        )
          .stdout.toString()
          .trim()
          .split("\n");
      expect(complete("jb st")).toEqual(["start", "status", "stop"]);
      expect(complete("jb start --ti")).toEqual(["--timeout"]);
      expect(complete("jb list -")).toEqual(expect.arrayContaining(["--quiet", "-q", "--json"]));
      expect(complete("jb log ''")).toContain(String(id));
      expect(complete("jb completion ''")).toEqual(["bash", "zsh", "fish"]);
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });

  test("zsh and fish scripts are complete, and an unknown shell is a usage error", async () => {
    const zsh = (await runJb(["completion", "zsh"])).stdout.toString();
    expect(zsh.startsWith("#compdef jb\n")).toBe(true);
    const fish = (await runJb(["completion", "fish"])).stdout.toString();
    for (const command of ["start", "list", "status", "log", "stop", "completion"]) {
      expect(zsh).toContain(`'${command}:`);
      expect(fish).toContain(`-a ${command} `);
    }
    expect(fish).toContain("-l timeout -r");
    for (const [shell, check] of [
      ["zsh", ["zsh", "-n"]],
      ["fish", ["fish", "--no-execute"]],
    ] as const) {
      // Syntax-checked where the shell is installed.
      if (Bun.which(check[0])) {
        const file = join(visible, `jb.${shell}`);
        writeFileSync(file, shell === "zsh" ? zsh : fish);
        expect(Bun.spawnSync([...check, file]).exitCode).toBe(0);
      }
    }
    const unknown = await runJb(["completion", "tcsh"]);
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toBe('error: jb completion needs a shell: bash, zsh, fish (got "tcsh")\n');
  });

  test("--version; --help piped has no colour even when colour is forced; errors are one line, no blank ones", async () => {
    const version = await runJb(["--version"]);
    const packageVersion = JSON.parse(await Bun.file(join(ROOT, "package.json")).text()).version;
    expect(version.stdout.toString()).toBe(`jb ${packageVersion}\n`);
    const help = Bun.spawnSync(["bun", join(ROOT, "apps/jb/src/main.ts"), "start", "--help"], {
      env: { ...process.env, FORCE_COLOR: "1", NO_COLOR: "" },
    });
    expect(help.stdout.toString()).not.toContain("\u001b[");
    expect(help.stdout.toString()).toContain("-e, --env=<KEY=VALUE>");
    const failed = await runJb(["status", ...connection, "424242"]);
    expect(failed.stderr).toBe("error: job 424242 not found; jb list shows your jobs\n");
  });

  test("./scripts/bun run jb prints only jb's output: no echo of the script", async () => {
    const child = Bun.spawnSync([join(ROOT, "scripts/bun"), "run", "jb", "--version"], { cwd: ROOT });
    expect(child.stderr.toString()).toBe("");
    expect(child.stdout.toString()).toMatch(/^jb \d+\.\d+\.\d+\n$/);
  });
});
