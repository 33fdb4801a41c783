// Writing to stdout so that nothing is lost: every write is awaited (so
// process.exit cannot cut a pipe's buffer short, and a slow reader slows the
// stream down), bytes go out as they are, and a closed stdout (`| head`) is an
// error value rather than an uncaught EPIPE.
import { type ConsolaReporter, createConsola, LogLevels } from "consola";

/** The reader of stdout went away (EPIPE). */
export class StdoutClosedError extends Error {
  override readonly name = "StdoutClosedError";
}

let closed: Error | undefined;
const waiting = new Set<(error: Error) => void>();

process.stdout.on("error", (error: Error) => {
  closed = new StdoutClosedError(`stdout closed: ${error.message}`);
  for (const fail of waiting) fail(closed);
  waiting.clear();
});

/** Writes text or raw bytes (no re-encoding) to stdout and waits until it is handed to the OS. */
export function writeStdout(data: string | Uint8Array): Promise<void> {
  if (closed) return Promise.reject(closed);
  return new Promise((resolve, reject) => {
    waiting.add(reject);
    process.stdout.write(data, (error) => {
      waiting.delete(reject);
      if (error) reject(closed ?? new StdoutClosedError(`stdout closed: ${error.message}`));
      else resolve();
    });
  });
}

/** One plain line per message: `error: …`, `warning: …`, or the message itself; no badges, no blank lines. */
const plainLines: ConsolaReporter = {
  log(logObj) {
    const prefix =
      logObj.type === "error" || logObj.type === "fatal"
        ? "error: "
        : logObj.type === "warn"
          ? "warning: "
          : "";
    process.stderr.write(`${prefix}${logObj.args.map(String).join(" ")}\n`);
  },
};

/**
 * Messages for people, all on stderr: stdout is for tables, JSON and a job's
 * bytes. The level is set because consola goes quiet under CI=true or
 * NODE_ENV=test, and an error must always be seen.
 */
export const logger = createConsola({
  level: LogLevels.info,
  throttle: 0,
  reporters: [plainLines],
});
