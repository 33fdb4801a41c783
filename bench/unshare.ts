// The start baseline: what a person pays to run a command in fresh PID,
// mount, network, UTS and IPC namespaces on this host with util-linux's
// `unshare`, from spawning it to its exit (fork, namespaces, a private
// /proc, exec, exit, teardown). A sandboxed StartJob over mTLS is judged
// against it.
import { type Summary, summarize } from "./stats";

export const UNSHARE_ARGS = ["-pfmnui", "--mount-proc", "--fork", "/bin/true"];
export const UNSHARE_COMMAND = `unshare ${UNSHARE_ARGS.join(" ")}`;

export type UnshareResult = { exit: Summary } | { skipped: string };

export async function benchUnshare(options: { samples: number; warmup: number }): Promise<UnshareResult> {
  const unshare = Bun.which("unshare");
  if (!unshare) return { skipped: "unshare is not installed (util-linux), so there is no baseline" };
  const argv = [unshare, ...UNSHARE_ARGS];
  // One run that shows its error: without the privilege to make namespaces
  // (or with them disabled) it fails fast, and timing that would mislead.
  const probe = Bun.spawnSync(argv, { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  if (probe.exitCode !== 0) {
    const error = probe.stderr.toString().trim();
    return { skipped: `\`${UNSHARE_COMMAND}\` failed (exit ${probe.exitCode}): ${error}` };
  }
  const exit: number[] = [];
  for (let i = 0; i < options.warmup + options.samples; i++) {
    const began = performance.now();
    const child = Bun.spawn(argv, { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
    const code = await child.exited;
    const elapsed = performance.now() - began;
    if (code !== 0) throw new Error(`\`${UNSHARE_COMMAND}\` exited with ${code} after ${i} runs`);
    if (i >= options.warmup) exit.push(elapsed);
  }
  return { exit: summarize(exit) };
}
