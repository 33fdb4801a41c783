// The real `jb`, as a subprocess: run to the end, or watched while it runs.
import { resolve } from "node:path";
import type { Subprocess } from "bun";

const MAIN = resolve(import.meta.dir, "../src/main.ts");

/** jb's environment: no colour, and no JOBBER_* from the test's own environment. */
function environment(extra: Record<string, string>): Record<string, string | undefined> {
  const { JOBBER_HOME: _home, JOBBER_ADDR: _addr, ...rest } = process.env;
  return { ...rest, NO_COLOR: "1", ...extra };
}

export interface JbResult {
  exitCode: number;
  stdout: Buffer;
  stderr: string;
}

/** Runs `bun apps/jb/src/main.ts ...args` (or `command`) to the end. */
export async function runJb(
  args: string[],
  { env = {}, command = ["bun", MAIN] }: { env?: Record<string, string>; command?: string[] } = {},
): Promise<JbResult> {
  const child = Bun.spawn([...command, ...args], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: environment(env),
  });
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(child.stdout).arrayBuffer(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  return { exitCode, stdout: Buffer.from(stdout), stderr };
}

/** A jb that is still running: its output so far, and a way to wait for more. */
export interface RunningJb {
  process: Subprocess<"ignore", "pipe", "pipe">;
  stdout(): Buffer;
  stderr(): string;
  /** Resolves once `test` holds for the output so far; rejects if jb exits first. */
  waitFor(test: (stdout: Buffer, stderr: string) => boolean, what: string): Promise<void>;
  /** Waits for the exit code. */
  exited: Promise<number>;
}

export function spawnJb(args: string[], env: Record<string, string> = {}): RunningJb {
  const child = Bun.spawn(["bun", MAIN, ...args], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: environment(env),
  });
  const stdoutChunks: Uint8Array[] = [];
  let stderr = "";
  const wakers = new Set<() => void>();
  const wake = () => {
    for (const waker of wakers) waker();
  };
  const pump = async (stream: ReadableStream<Uint8Array>, sink: (chunk: Uint8Array) => void) => {
    for await (const chunk of stream) {
      sink(chunk);
      wake();
    }
  };
  const decoder = new TextDecoder();
  const pumped = Promise.all([
    pump(child.stdout, (chunk) => stdoutChunks.push(chunk)),
    pump(child.stderr, (chunk) => {
      stderr += decoder.decode(chunk, { stream: true });
    }),
  ]);
  // Exited once the process is gone and everything it wrote has been read.
  let finished = false;
  const exited = Promise.all([child.exited, pumped]).then(([code]) => {
    finished = true;
    wake();
    return code;
  });
  const stdout = () => Buffer.concat(stdoutChunks);
  return {
    process: child,
    stdout,
    stderr: () => stderr,
    exited,
    waitFor(test, what) {
      return new Promise((resolvePromise, reject) => {
        const check = () => {
          if (test(stdout(), stderr)) {
            wakers.delete(check);
            resolvePromise();
          } else if (finished) {
            wakers.delete(check);
            reject(new Error(`jb exited (${child.exitCode}) before ${what}; stderr: ${stderr}`));
          }
        };
        wakers.add(check);
        check();
      });
    },
  };
}

/** stderr as its lines of text, blank lines dropped (consola pads a badge with them). */
export function stderrLines(stderr: string): string[] {
  return stderr.split("\n").filter((line) => line.trim() !== "");
}
