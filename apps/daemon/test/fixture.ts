// A real jobberd, as a separate process, on a free port with temporary home
// and state directories, and clients built from the identities it issued.
import { createHash, X509Certificate } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { connectJobService, type JobClient } from "@jobber/proto";
import type { Subprocess } from "bun";
import { removeCgroupParent } from "../../../test-support/cgroup-cleanup";
import { TEST_ROOT } from "../../../test-support/test-root";

const MAIN = resolve(import.meta.dir, "../src/main.ts");

export { TEST_ROOT };

export interface DaemonProcess {
  home: string;
  /** Where this daemon's job cgroups live, relative to each cgroup hierarchy. */
  cgroupParent: string;
  stateDir: string;
  address: string;
  process: Subprocess<"ignore", "pipe", "pipe">;
  /** Everything it logged so far. */
  output(): string;
  /** A client with the first identity jobberd bootstrapped. */
  client(): JobClient;
  /** Issues another identity (another tenant) with `jobberd issue-client`; returns its home. */
  issueClient(name: string): Promise<string>;
  /** Waits until a line matching `pattern` is logged. */
  waitForLog(pattern: RegExp): Promise<string>;
  /** SIGTERM and wait for the exit code. */
  terminate(): Promise<number>;
  /** Starts a new daemon on the same home and state directory (and port); with `extraArgs`, those instead of the first daemon's. */
  restart(extraArgs?: string[]): Promise<DaemonProcess>;
  cleanup(): Promise<void>;
}

let daemonsStarted = 0;

interface Dirs {
  command: string[];
  cgroupParent: string;
  home: string;
  stateDir: string;
  listen: string;
  /** The fixture's own flags (stop grace, cgroup parent). */
  baseArgs: string[];
  extraArgs: string[];
}

/** The jobberd to run: from source by default, or a compiled binary. */
export const JOBBERD_FROM_SOURCE = ["bun", MAIN];

export async function startDaemonProcess(
  extraArgs: string[] = [],
  command: string[] = JOBBERD_FROM_SOURCE,
  listen = "127.0.0.1:0",
  /** A state directory of the test's own (one on a small tmpfs); removed by cleanup like the fixture's. */
  stateDir: string = mkdtempSync(join(TEST_ROOT, "jobberd-state-")),
): Promise<DaemonProcess> {
  const home = join(mkdtempSync(join(TEST_ROOT, "jobberd-home-")), "home");
  // Job ids start at 1 in every state directory: daemons side by side need cgroup parents of their own.
  const cgroupParent = `jobber-test-${process.pid}-${++daemonsStarted}`;
  return spawnDaemon({
    command,
    home,
    stateDir,
    cgroupParent,
    listen,
    baseArgs: ["--stop-grace", "1s", "--cgroup-parent", cgroupParent],
    extraArgs,
  });
}

async function spawnDaemon(dirs: Dirs): Promise<DaemonProcess> {
  const child = Bun.spawn(
    [
      ...dirs.command,
      "--listen",
      dirs.listen,
      "--home",
      dirs.home,
      "--state-dir",
      dirs.stateDir,
      ...dirs.baseArgs,
      ...dirs.extraArgs,
    ],
    { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } },
  );
  let log = "";
  const waiters = new Set<() => void>();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      log += decoder.decode(chunk, { stream: true });
      for (const wake of waiters) wake();
    }
  };
  void pump(child.stdout);
  void pump(child.stderr);
  const clients: JobClient[] = [];
  const issued: string[] = [];

  const waitForLog = (pattern: RegExp) =>
    new Promise<string>((resolvePromise, reject) => {
      const check = () => {
        const match = pattern.exec(log);
        if (match) {
          waiters.delete(check);
          resolvePromise(match[0]);
        } else if (child.exitCode !== null) {
          waiters.delete(check);
          reject(new Error(`jobberd exited (${child.exitCode}) before logging ${pattern}:\n${log}`));
        }
      };
      waiters.add(check);
      child.exited.then(check);
      check();
    });

  const listening = await waitForLog(/listening on (\S+)/);
  const address = (/listening on (\S+)/.exec(listening) as RegExpExecArray)[1] as string;
  const daemon: DaemonProcess = {
    home: dirs.home,
    cgroupParent: dirs.cgroupParent,
    stateDir: dirs.stateDir,
    address,
    process: child,
    output: () => log,
    client() {
      const client = connectJobService({ addr: address, home: dirs.home });
      clients.push(client);
      return client;
    },
    async issueClient(name) {
      const out = join(mkdtempSync(join(TEST_ROOT, `jobber-client-${name}-`)), "home");
      issued.push(join(out, ".."));
      const issue = Bun.spawn([...dirs.command, "issue-client", name, "--out", out, "--home", dirs.home], {
        stdout: "pipe",
        stderr: "pipe",
      });
      if ((await issue.exited) !== 0) throw new Error(await new Response(issue.stderr).text());
      // The daemon takes new pool certificates in as it sees them (a running
      // one): wait until it has this one, or its first call may be refused.
      if (child.exitCode === null) {
        const poolSize = readdirSync(join(dirs.home, "pool")).length;
        await waitForLog(new RegExp(`client pool reloaded: ${poolSize} certificates`));
      }
      return out;
    },
    waitForLog,
    async terminate() {
      for (const client of clients) client.close();
      child.kill("SIGTERM");
      return child.exited;
    },
    async restart(extraArgs = dirs.extraArgs) {
      if (child.exitCode === null) {
        child.kill("SIGKILL");
        await child.exited;
      }
      return spawnDaemon({ ...dirs, extraArgs, listen: address });
    },
    async cleanup() {
      for (const client of clients) client.close();
      if (child.exitCode === null) {
        child.kill("SIGKILL");
        await child.exited;
      }
      removeCgroupParent(dirs.cgroupParent);
      for (const dir of issued) rmSync(dir, { recursive: true, force: true });
      rmSync(join(dirs.home, ".."), { recursive: true, force: true });
      rmSync(dirs.stateDir, { recursive: true, force: true });
    },
  };
  return daemon;
}

/** The tenant (sha256 of the certificate's DER) of the identity in a client home. */
export function tenantOf(home: string): string {
  const der = new X509Certificate(readFileSync(join(home, "client.crt"))).raw;
  return createHash("sha256").update(der).digest("hex");
}

// One reader of /proc for the bench and the tests: the bench's (it must not depend on tests).
export { inotifyWatches } from "../../../bench/proc";

/** Open file descriptors of the process that point at `path`. */
export function fdsOpenOn(pid: number, path: string): number {
  let count = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`) === path) count++;
    } catch {
      // Closed while we looked.
    }
  }
  return count;
}

export async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}

/** The gRPC status code of a rejected call. */
export async function codeOf(promise: Promise<unknown>): Promise<number | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return (error as { code?: number }).code;
  }
}
