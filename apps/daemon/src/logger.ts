// jobberd's log: one line per event, with a timestamp, as text for people or
// as JSON for log shippers (`--log-format json`). Every line is written as it
// happens: consola's collapsing of repeated lines ("repeated 5 times") is off,
// because an operator counting requests must see each one.
//
// Call as `logger.info("message", { field: value, … })`: the object after the
// message becomes fields (`key=value` in text, properties in JSON).
import { format } from "node:util";
import {
  type ConsolaInstance,
  type ConsolaReporter,
  createConsola,
  LogLevels,
  type LogObject,
} from "consola";

export const LOG_FORMATS = ["text", "json"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export type LogFields = Record<string, string | number | boolean | undefined>;

/** consola's type names as the level operators expect to read. */
function levelName(logObj: LogObject): string {
  switch (logObj.type) {
    case "fatal":
    case "error":
      return "error";
    case "warn":
      return "warn";
    case "debug":
    case "trace":
    case "verbose":
      return "debug";
    default:
      return "info";
  }
}

/** A plain object as the last argument is the line's fields; the rest is the message. */
function split(args: unknown[]): { msg: string; fields: LogFields } {
  const last = args.at(-1);
  const hasFields =
    args.length > 1 &&
    typeof last === "object" &&
    last !== null &&
    Object.getPrototypeOf(last) === Object.prototype;
  const fields = hasFields ? (last as LogFields) : {};
  const parts = hasFields ? args.slice(0, -1) : args;
  const msg = parts
    .map((part) => (part instanceof Error ? part.message : typeof part === "string" ? part : format(part)))
    .join(" ");
  return { msg, fields };
}

/** `key=value`, the value quoted when it has spaces, quotes or nothing in it. */
function textField(key: string, value: string | number | boolean): string {
  const text = String(value);
  return `${key}=${/^[^\s"=]+$/.test(text) ? text : JSON.stringify(text)}`;
}

function textLine(logObj: LogObject): string {
  const { msg, fields } = split(logObj.args);
  const pairs = Object.entries(fields).flatMap(([key, value]) =>
    value === undefined ? [] : [textField(key, value)],
  );
  return [logObj.date.toISOString(), levelName(logObj).toUpperCase().padEnd(5), msg, ...pairs].join(" ");
}

function jsonLine(logObj: LogObject): string {
  const { msg, fields } = split(logObj.args);
  // time, level and msg first and never overwritten by a field of the same name.
  return JSON.stringify({ ...fields, time: logObj.date.toISOString(), level: levelName(logObj), msg });
}

function reporter(formatLine: (logObj: LogObject) => string, write: (line: string) => void): ConsolaReporter {
  return { log: (logObj) => write(`${formatLine(logObj)}\n`) };
}

/**
 * The daemon's logger. Lines go to stderr (where systemd's journal and
 * container runtimes collect them); `write` replaces that in tests.
 */
export function createDaemonLogger(
  logFormat: LogFormat = "text",
  write: (line: string) => void = (line) => process.stderr.write(line),
): ConsolaInstance {
  return createConsola({
    // consola goes quiet under CI=true or NODE_ENV=test; a daemon's log must not.
    level: LogLevels.info,
    throttle: 0,
    reporters: [reporter(logFormat === "json" ? jsonLine : textLine, write)],
  });
}
