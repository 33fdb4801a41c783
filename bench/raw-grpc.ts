// Starts raw-grpc-server.ts (the transport baseline) as its own process.
import { resolve } from "node:path";
import { onCleanup } from "./cleanup";

const RAW_SERVER = resolve(import.meta.dir, "raw-grpc-server.ts");

export interface RawServer {
  pid: number;
  address: string;
  stop(): Promise<void>;
}

/** `mode`: `{ file }` streams a file, `{ ticks }` sends timestamp lines 10 ms apart. */
export async function startRawServer(
  home: string,
  mode: { file: string } | { ticks: number },
): Promise<RawServer> {
  const modeArgs = "file" in mode ? ["--file", mode.file] : ["--ticks", String(mode.ticks)];
  const child = Bun.spawn(["bun", RAW_SERVER, "--home", home, ...modeArgs], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "inherit",
    detached: true,
  });
  const stop = onCleanup(`raw grpc-js server ${child.pid}`, async () => {
    child.kill("SIGKILL");
    await child.exited;
  });
  let output = "";
  const decoder = new TextDecoder();
  for await (const chunk of child.stdout) {
    output += decoder.decode(chunk, { stream: true });
    const match = /listening on (\S+)/.exec(output);
    if (match) return { pid: child.pid, address: match[1] as string, stop };
  }
  await stop();
  throw new Error(`the raw grpc-js server exited before listening: ${output}`);
}
