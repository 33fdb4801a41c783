#!/usr/bin/env bun
// jobberd's command line: serve (the default), or issue a client identity.
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { resolve } from "node:path";
import { defineCommand, runMain } from "citty";
import { consola, LogLevels } from "consola";
import { startDaemon } from "./daemon";
import { issueClientIdentity } from "./pki";
import { quotaFlags, quotaOptions } from "./quota-flags";
import { rootRefusal } from "./root";
import { parseDuration } from "./units";

// consola goes quiet under CI=true or NODE_ENV=test; a daemon's request log must not.
consola.level = LogLevels.info;

const homeArg = {
  type: "string",
  description: "jobberd's home: PKI and client pool (default $JOBBER_HOME or ~/.jobber)",
} as const;

function homeOf(value: string | undefined): string {
  return resolve(value ?? process.env.JOBBER_HOME ?? `${homedir()}/.jobber`);
}

function requireRoot(): void {
  const refusal = rootRefusal(process.getuid?.());
  if (refusal) {
    consola.error(refusal);
    process.exit(1);
  }
}

/** "nobody", "root", a user name from /etc/passwd, or "uid:gid". */
function parseUser(value: string): { uid: number; gid: number } {
  const numeric = /^(\d+):(\d+)$/.exec(value);
  if (numeric) return { uid: Number(numeric[1]), gid: Number(numeric[2]) };
  for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
    const [name, , uid, gid] = line.split(":");
    if (name === value) return { uid: Number(uid), gid: Number(gid) };
  }
  throw new Error(`--run-as: no user ${JSON.stringify(value)} in /etc/passwd (give a name or uid:gid)`);
}

/** One line for a failure a person can fix (a bad flag, an unusable home), not a stack trace. */
function exitOnError<T>(run: (context: T) => Promise<void>): (context: T) => Promise<void> {
  return (context) =>
    run(context).catch((error: unknown) => {
      consola.error(error instanceof Error ? error.message : String(error));
      process.exit(1);
    });
}

const serve = defineCommand({
  meta: {
    name: "jobberd",
    description: "Run jobs for clients with a certificate in the pool (gRPC over mTLS).",
  },
  args: {
    listen: { type: "string", description: "address to listen on", default: "127.0.0.1:50051" },
    home: homeArg,
    "state-dir": { type: "string", description: "where jobs and their logs live", default: "/tmp/jobber" },
    "run-as": { type: "string", description: "user jobs run as: a name or uid:gid", default: "nobody" },
    "stop-grace": {
      type: "string",
      description: "time from SIGTERM to SIGKILL when stopping a job",
      default: "5s",
    },
    "cgroup-parent": {
      type: "string",
      description: "cgroup under which each job gets its own; one jobberd per parent",
      default: "jobber",
    },
    ...quotaFlags,
  },
  run: exitOnError(async ({ args }) => {
    requireRoot();
    const daemon = await startDaemon({
      listen: args.listen,
      home: homeOf(args.home),
      stateDir: resolve(args["state-dir"]),
      runAs: parseUser(args["run-as"]),
      stopGraceMs: parseDuration("--stop-grace", args["stop-grace"]),
      cgroupParent: args["cgroup-parent"],
      ...quotaOptions(args),
      logger: consola,
    });
    const stop = (signal: string) => {
      consola.info(`${signal}: shutting down; running jobs keep running and are adopted on the next start`);
      daemon.shutdown().then(() => process.exit(0));
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  }),
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
      description: "directory to write client.crt, client.key and ca.crt to",
      required: true,
    },
    home: homeArg,
  },
  run: exitOnError(async ({ args }) => {
    const out = resolve(args.out);
    const issued = await issueClientIdentity(homeOf(args.home), args.name, out);
    consola.success(
      `issued ${args.name} (${issued.hash.slice(0, 12)}) into ${out}; use it with: jb --home ${out} list`,
    );
  }),
});

const main = defineCommand({
  meta: serve.meta,
  // Known here too, so that `jobberd --listen HOST:PORT` is read as flags, not a subcommand.
  args: serve.args,
  subCommands: { serve, "issue-client": issueClient },
  default: "serve",
});

runMain(main);
