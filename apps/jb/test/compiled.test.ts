// The single-file executables: `bun run build` output, used for real.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { type DaemonProcess, startDaemonProcess, TEST_ROOT } from "../../daemon/test/fixture";
import { runJb } from "./run-jb";

const root = join(import.meta.dir, "../../..");
let dist: string;
let daemon: DaemonProcess;

beforeAll(async () => {
  dist = mkdtempSync(join(TEST_ROOT, "dist-"));
  for (const [entry, name] of [
    ["apps/daemon/src/main.ts", "jobberd"],
    ["apps/jb/src/main.ts", "jb"],
  ] as const) {
    // The same flags as `bun run build`.
    const build = Bun.spawnSync(
      ["bun", "build", "--compile", "--bytecode", "--format=esm", entry, "--outfile", join(dist, name)],
      { cwd: root },
    );
    if (build.exitCode !== 0) throw new Error(`building ${name} failed:\n${build.stderr}`);
  }
  daemon = await startDaemonProcess([], [join(dist, "jobberd")]);
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
    { command: [join(dist, "jb")] },
  );
  expect(result.stdout).toEqual(Buffer.from("compiled\0"));
  expect(result.exitCode).toBe(5);
});
