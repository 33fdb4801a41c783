#!/usr/bin/env bun
// jobberd's command line: serve (the default), or issue a client identity.
// Every flag of serve is also a key of the --config file (cli.ts).
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { resolve } from "node:path";
import { logVerbosity, setLogger, setLogVerbosity } from "@grpc/grpc-js";
import { JOBBER_DEFAULTS } from "@jobber/jobber";
import { type CommandDef, defineCommand } from "citty";
import type { ConsolaInstance } from "consola";
import {
  type FlagValues,
  namePositionals,
  parseCommandLine,
  readConfigFile,
  resolveFlags,
  UsageError,
  usage,
} from "./cli";
import { startDaemon } from "./daemon";
import { createDaemonLogger, LOG_FORMATS, type LogFormat } from "./logger";
import { issueClientIdentity } from "./pki";
import { quotaFlags, quotaOptions } from "./quota-flags";
import { rootRefusal } from "./root";
import { parseDuration } from "./units";
import { VERSION } from "./version";

const homeArg = {
  type: "string",
  description: "jobberd's home: PKI and client pool (default $JOBBER_HOME or ~/.jobber)",
} as const;

const configArg = {
  type: "string",
  valueHint: "file",
  description: "a TOML file whose keys are these flags without dashes (flags given here win)",
} as const;

function homeOf(value: string | undefined): string {
  return resolve(value ?? process.env.JOBBER_HOME ?? `${homedir()}/.jobber`);
}

function requireRoot(): void {
  const refusal = rootRefusal(process.getuid?.());
  if (refusal) throw new Error(refusal);
}

/** "nobody", "root", a user name from /etc/passwd, or "uid:gid". */
function parseUser(value: string, flag = "--run-as"): { uid: number; gid: number } {
  const numeric = /^(\d+):(\d+)$/.exec(value);
  if (numeric) return { uid: Number(numeric[1]), gid: Number(numeric[2]) };
  for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
    const [name, , uid, gid] = line.split(":");
    if (name === value) return { uid: Number(uid), gid: Number(gid) };
  }
  throw new Error(`${flag}: no user ${JSON.stringify(value)} in /etc/passwd (give a name or uid:gid)`);
}

function parseLogFormat(value: string): LogFormat {
  if ((LOG_FORMATS as readonly string[]).includes(value)) return value as LogFormat;
  throw new UsageError(`--log-format: ${JSON.stringify(value)} is not one of ${LOG_FORMATS.join(", ")}`);
}

/** A list flag's values (a flag given once, or a config array). */
function listOf(value: unknown): string[] {
  return Array.isArray(value) ? value.map(String) : typeof value === "string" ? [value] : [];
}

/**
 * grpc-js's own log lines join jobberd's, in its format. Quiet until the
 * server is up: a failed bind is reported by jobberd itself, in one line.
 */
function routeGrpcLogs(logger: ConsolaInstance): { serving(): void } {
  setLogger({
    error: (...args: unknown[]) => logger.warn(`grpc: ${args.join(" ")}`),
    info: (...args: unknown[]) => logger.info(`grpc: ${args.join(" ")}`),
    debug: () => {},
  } as unknown as Console);
  setLogVerbosity(logVerbosity.NONE);
  return { serving: () => setLogVerbosity(logVerbosity.ERROR) };
}

const serve = defineCommand({
  meta: {
    name: "jobberd",
    version: VERSION,
    description: "Run jobs for clients with a certificate in the pool (gRPC over mTLS).",
  },
  args: {
    config: configArg,
    listen: { type: "string", description: "address to listen on", default: "127.0.0.1:50051" },
    home: homeArg,
    "state-dir": { type: "string", description: "where jobs and their logs live", default: "/tmp/jobber" },
    "run-as": { type: "string", description: "user jobs run as: a name or uid:gid", default: "nobody" },
    "stop-grace": {
      type: "string",
      description: "time from SIGTERM to SIGKILL when stopping a job",
      default: `${JOBBER_DEFAULTS.stopGraceMs / 1000}s`,
    },
    "cgroup-parent": {
      type: "string",
      description: "cgroup under which each job gets its own; one jobberd per parent",
      default: JOBBER_DEFAULTS.cgroupParent,
    },
    "log-format": {
      type: "string",
      valueHint: "text|json",
      description: "text: timestamped lines; json: one JSON object per line (time, level, msg, fields)",
      default: "text",
    },
    "metrics-listen": {
      type: "string",
      valueHint: "host:port",
      description: "serve Prometheus metrics at http://host:port/metrics (off by default)",
    },
    san: {
      type: "string",
      valueHint: "name",
      multiple: true,
      description: "extra DNS name or IP for the server certificate made at bootstrap (repeatable)",
    },
    ...quotaFlags,
  },
  run: async ({ args }) => {
    const logger = createDaemonLogger(parseLogFormat(String(args["log-format"])));
    const grpcLogs = routeGrpcLogs(logger);
    try {
      requireRoot();
      const daemon = await startDaemon({
        listen: args.listen,
        home: homeOf(args.home),
        stateDir: resolve(args["state-dir"]),
        runAs: parseUser(args["run-as"]),
        stopGraceMs: parseDuration("--stop-grace", args["stop-grace"]),
        cgroupParent: args["cgroup-parent"],
        serverNames: listOf(args.san),
        metricsListen: args["metrics-listen"] || undefined,
        ...quotaOptions(args),
        logger,
      });
      grpcLogs.serving();
      const stop = (signal: string) => {
        logger.info(`${signal}: shutting down; running jobs keep running and are adopted on the next start`);
        daemon.shutdown().then(() => process.exit(0));
      };
      process.once("SIGTERM", () => stop("SIGTERM"));
      process.once("SIGINT", () => stop("SIGINT"));
    } catch (error) {
      // A failure a person can fix (a busy port, an unusable home): one line, not a stack trace.
      logger.error(error instanceof Error ? error.message : String(error));
      process.exit(1);
    }
  },
});

const issueClient = defineCommand({
  meta: {
    name: "issue-client",
    description: "Issue a client identity signed by jobberd's CA and add it to the pool.",
  },
  args: {
    name: { type: "positional", description: "a name for the identity, e.g. alice", required: true },
    out: {
      type: "string",
      valueHint: "dir",
      description: "directory to write client.crt, client.key and ca.crt to",
      required: true,
    },
    owner: {
      type: "string",
      valueHint: "user",
      description: "hand the directory and files to this user (a name or uid:gid), so they can use them",
    },
    home: homeArg,
    config: configArg,
  },
  run: async ({ args }) => {
    const logger = createDaemonLogger("text");
    try {
      const out = resolve(args.out);
      const owner = args.owner ? parseUser(args.owner, "--owner") : undefined;
      const issued = await issueClientIdentity(homeOf(args.home), args.name, out, owner);
      const handedTo = args.owner ? `, owned by ${args.owner}` : "";
      logger.info(
        `issued ${args.name} (${issued.hash.slice(0, 12)}) into ${out}${handedTo}; use it with: jb --home ${out} list`,
      );
    } catch (error) {
      logger.error(error instanceof Error ? error.message : String(error));
      process.exit(1);
    }
  },
});

// biome-ignore lint/suspicious/noExplicitAny: each command has its own args type; dispatch needs only the shape.
const subCommands: Record<string, CommandDef<any>> = { "issue-client": issueClient };
/** For --help only: serve's flags and the subcommands. */
const root = defineCommand({ meta: serve.meta, args: serve.args, subCommands });

/** jobberd [serve flags] | jobberd issue-client …; --help and --version anywhere before a subcommand's own. */
async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  const sub = first !== undefined ? subCommands[first] : undefined;
  // biome-ignore lint/suspicious/noExplicitAny: serve or a subcommand, dispatched by shape.
  const command: CommandDef<any> = sub ?? serve;
  const name = sub ? `jobberd ${first}` : "jobberd";
  const args = sub ? rest : argv;
  if (args.includes("--help") || args.includes("-h")) {
    process.stdout.write(await usage(sub ?? root, sub ? root : undefined));
    return 0;
  }
  if (!sub && (args.includes("--version") || args.includes("-v"))) {
    process.stdout.write(`jobberd ${VERSION}\n`);
    return 0;
  }
  let values: FlagValues;
  try {
    const commandLine = parseCommandLine(args, command, name);
    const configFile = commandLine.config;
    const config = typeof configFile === "string" ? readConfigFile(configFile, serve) : {};
    // issue-client reads only the keys it knows (home) from the daemon's config.
    const known = Object.fromEntries(Object.entries(config).filter(([key]) => key in (command.args ?? {})));
    values = resolveFlags(commandLine, known, command);
    namePositionals(values, command, name);
  } catch (error) {
    createDaemonLogger("text").error(error instanceof Error ? error.message : String(error));
    return error instanceof UsageError ? 2 : 1;
  }
  await command.run?.({ args: values as never, rawArgs: args, cmd: command });
  return sub ? 0 : -1;
}

main(process.argv.slice(2)).then((exitStatus) => {
  // -1: serving; the process lives until a signal.
  if (exitStatus >= 0) process.exit(exitStatus);
});
