// The single-file executables: `bun run build` output, used for real, on a
// machine without the source tree's node_modules (hidden by a bind mount in a
// mount namespace of their own), as they would run where they are copied to.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { type DaemonProcess, startDaemonProcess, TEST_ROOT } from "../../daemon/test/fixture";
import { runJb } from "./run-jb";

const root = join(import.meta.dir, "../../..");
let dist: string;
let daemon: DaemonProcess;

/** Runs `binary` with the checkout's node_modules replaced by an empty directory. */
function withoutNodeModules(binary: string): string[] {
  const empty = join(dist, "empty");
  mkdirSync(empty, { recursive: true });
  const script = `mount --bind "$0" "$1" && shift && exec "$@"`;
  return ["unshare", "--mount", "sh", "-c", script, empty, join(root, "node_modules"), binary];
}

beforeAll(async () => {
  dist = mkdtempSync(join(TEST_ROOT, "dist-"));
  // What `bun run build` runs.
  const build = Bun.spawnSync(["bun", "scripts/build.ts", dist], { cwd: root, stderr: "pipe" });
  if (build.exitCode !== 0) throw new Error(`building failed:\n${build.stderr}`);
  daemon = await startDaemonProcess([], withoutNodeModules(join(dist, "jobberd")));
});

afterAll(async () => {
  await daemon?.cleanup();
  rmSync(dist, { recursive: true, force: true });
});

test("compiled jobberd and jb run a job end to end: bytes and exit code pass through", async () => {
  const result = await runJb(
    [
      "--addr",
      daemon.address,
      "--home",
      daemon.home,
      "start",
      "-f",
      "--",
      "sh",
      "-c",
      "printf 'compiled\\000'; exit 5",
    ],
    { command: withoutNodeModules(join(dist, "jb")) },
  );
  expect(result.stdout).toEqual(Buffer.from("compiled\0"));
  expect(result.exitCode).toBe(5);
});

test("compiled jobberd serves health and reflection from the .proto files it embeds", async () => {
  const home = daemon.home;
  const buf = (args: string[]) =>
    Bun.spawnSync(
      [
        join(root, "node_modules/.bin/buf"),
        "curl",
        "--protocol",
        "grpc",
        "--cacert",
        join(home, "ca.crt"),
        ...args,
      ],
      {
        env: { ...process.env, HOME: dist },
      },
    );
  const health = buf([
    ...["--schema", join(root, "node_modules/grpc-health-check/proto/health/v1/health.proto")],
    ...["-d", "{}", `https://${daemon.address}/grpc.health.v1.Health/Check`],
  ]);
  expect(JSON.parse(health.stdout.toString())).toEqual({ status: "SERVING" });
  const services = buf([
    ...["--cert", join(home, "client.crt"), "--key", join(home, "client.key")],
    ...["--list-services", `https://${daemon.address}`],
  ]);
  expect(services.stdout.toString()).toContain("jobber.v1.JobService");
});
