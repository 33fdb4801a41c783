#!/usr/bin/env bun
// jb, jobber's command-line client. This file is its surface: the commands,
// their flags and help, and the dispatch. What each command does is in
// commands.ts, loaded only when one runs (gRPC takes ~40 ms to load; --help
// and a usage error need none of it).
import { type ArgsDef, type CommandDef, defineCommand, renderUsage, runCommand } from "citty";
import { DEFAULT_ADDR, normalizeArgv, type OptionSpecs } from "./args";
import { Failure, UsageError } from "./failure";
import { logger, writeStdout } from "./output";

const connectionArgs = {
  addr: {
    type: "string",
    valueHint: "host:port",
    description: `jobberd's address (default $JOBBER_ADDR or ${DEFAULT_ADDR})`,
  },
  home: {
    type: "string",
    valueHint: "dir",
    description: "directory with client.crt, client.key, ca.crt (default $JOBBER_HOME or ~/.jobber)",
  },
  help: { type: "boolean", alias: "h", description: "show this help" },
} as const;

const jsonArg = {
  json: { type: "boolean", description: "print one JSON document (also -json)" },
} as const;

const idArg = {
  id: { type: "positional", required: false, description: "the job's id, as jb list shows it" },
} as const;

const commandsModule = () => import("./commands");

const start = defineCommand({
  meta: { name: "start", description: "Start a command as a job; its argv is run as given, with no shell." },
  args: {
    follow: {
      type: "boolean",
      alias: "f",
      description: "stream its output until it ends; exit with its code",
    },
    quiet: { type: "boolean", alias: "q", description: "print only the job's id" },
    ...jsonArg,
    cpus: { type: "string", valueHint: "cores", description: "CPU limit in cores, e.g. 0.5 or 2" },
    memory: { type: "string", valueHint: "size", description: "memory limit, e.g. 256M or 1G (no swap)" },
    "io-read": {
      type: "string",
      valueHint: "rate",
      description: "disk read limit per second, e.g. 10M or 10M/s",
    },
    "io-write": { type: "string", valueHint: "rate", description: "disk write limit per second, e.g. 10M/s" },
    pids: { type: "string", valueHint: "n", description: "most processes and threads, e.g. 100" },
    log: {
      type: "string",
      valueHint: "size",
      description: "most bytes its log may hold, e.g. 64M; output past it is dropped",
    },
    command: {
      type: "positional",
      required: false,
      description: "the program and its arguments, after the options (or after --)",
    },
    ...connectionArgs,
  },
  run: async ({ args }) => (await commandsModule()).start({ ...args, argv: args._ }),
});

const list = defineCommand({
  meta: { name: "list", description: "List your jobs, oldest first." },
  args: { ...jsonArg, ...connectionArgs },
  run: async ({ args }) => (await commandsModule()).list(args),
});

const status = defineCommand({
  meta: { name: "status", description: "Show one job: command, start time, status, exit code." },
  args: { ...jsonArg, ...idArg, ...connectionArgs },
  run: async ({ args }) => (await commandsModule()).status(args),
});

const log = defineCommand({
  meta: {
    name: "log",
    description: "Print a job's output (its raw bytes); -f follows it until the job ends.",
  },
  args: {
    follow: {
      type: "boolean",
      alias: "f",
      description: "keep streaming until the job ends; Ctrl+C detaches",
    },
    ...idArg,
    ...connectionArgs,
  },
  run: async ({ args }) => (await commandsModule()).log(args),
});

const stop = defineCommand({
  meta: {
    name: "stop",
    description: "Stop a running job: SIGTERM, then SIGKILL after the daemon's grace period.",
  },
  args: { ...jsonArg, ...idArg, ...connectionArgs },
  run: async ({ args }) => (await commandsModule()).stop(args),
});

const rm = defineCommand({
  meta: {
    name: "rm",
    description: "Remove finished jobs: their record and their log. Ids are never reused.",
  },
  args: {
    ids: { type: "positional", required: false, description: "the jobs' ids, as jb list shows them" },
    ...connectionArgs,
  },
  run: async ({ args }) => (await commandsModule()).remove({ ...args, ids: args._ }),
});

// Only the root has subCommands: citty 0.2.2 runs both `run` and the
// subcommand of a command that has both. jb dispatches itself (see main), so
// that `--help` after `--` belongs to the job, and `-json` is understood.
// biome-ignore lint/suspicious/noExplicitAny: each command has its own args type; dispatch needs only the shape.
const commands: Record<string, CommandDef<any>> = { start, list, status, log, stop, rm };

const root = defineCommand({
  meta: { name: "jb", description: "Run and watch jobs on a jobberd server (gRPC over mTLS)." },
  args: connectionArgs,
  subCommands: commands,
});

const EXAMPLES: Record<string, string> = {
  jb: `EXAMPLES

  jb start -- sh -c 'echo hello; sleep 30'
  jb list
  jb log -f 12
  jb stop 12
  jb rm 12 13
  JOBBER_ADDR=build-box:50051 jb --home ~/.jobber-ci list -json

Each command has its own help: jb start --help. Long options work with one dash
or two (-json, --json). Failures print one line on stderr and exit non-zero.`,
  start: `EXAMPLES

  jb start -- ls -lah /                 print the new job as a table
  jb start -q -- make test              print only the id (for scripts)
  jb start -f -- sh -c 'exit 3'         stream its output; jb exits 3 too
  jb start --memory 256M --cpus 0.5 --pids 100 --io-write 10M/s -- ./build.sh
  jb start --log 64M -- ./chatty.sh     keep at most 64 MiB of its output

Options go before the command; everything from the command on is the job's
argv (use -- when the command itself starts with a dash). Need a shell? Ask
for one: jb start -- sh -c 'a | b'.

Sizes use binary units: 512K = 512 KiB, 256M = 256 MiB, 1G = 1 GiB (KiB/MiB/GiB
and KB/MB/GB spellings also mean 1024-based); plain numbers are bytes. I/O
rates are bytes per second, the /s optional (10M = 10M/s). Unset limits get
the daemon's defaults; limits over the daemon's maximums are refused.

At its --log size the job's log is full: the write that reaches the cap is cut
short, later ones fail with EFBIG ("File too large"), and jb status says "log
truncated".

With -f, stdout carries the job's raw bytes and jb exits with the job's code
(128 + signal number when a signal ended it, e.g. 137 for SIGKILL or an OOM
kill; 1 when it could not be executed). Ctrl+C detaches: the job keeps running.`,
  list: `EXAMPLES

  jb list
  jb list -json | jq '.[] | select(.status == "running") | .id'`,
  status: `EXAMPLES

  jb status 12
  jb status -json 12 | jq .exit_code

Statuses: Running, Exited (code), Stopped, Killed (signal), OOM killed, Failed,
Timed out; ", log truncated" when output was dropped at the log's cap.
In JSON: running, exited, stopped, killed, oom_killed, failed, timed_out, and
log_truncated.`,
  log: `EXAMPLES

  jb log 12             the output so far
  jb log -f 12          follow until the job ends; Ctrl+C detaches, the job keeps running
  jb log 12 > out.bin   output is bytes, written as they are`,
  stop: `EXAMPLES

  jb stop 12
  jb stop -json 12`,
  rm: `EXAMPLES

  jb rm 12              remove a finished job and its log
  jb rm 12 13 14        each in turn; prints the ids it removed

A running job cannot be removed: stop it first (jb stop 12). jobberd also
removes finished jobs by itself after its retention (a week by default).`,
};

/** citty's usage with jb's own touches: the job's argv and ids spelled out, examples, no colour in a pipe. */
async function usage(name: string): Promise<string> {
  const command = name === "jb" ? root : commands[name];
  const rendered = await renderUsage(command ?? root, name === "jb" ? undefined : root);
  const text = `${process.stdout.isTTY ? rendered : Bun.stripANSI(rendered)}\n\n${EXAMPLES[name] ?? ""}\n`;
  return text
    .replace("[COMMAND]", "[--] <COMMAND> [ARGS...]")
    .replace("[IDS]", "<ID>...")
    .replace("[ID]", "<ID>")
    .replace(/[ \t]+$/gm, "");
}

/** The CommandDef's options in the form the normaliser reads. */
function specsOf(args: ArgsDef): OptionSpecs {
  const specs: OptionSpecs = {};
  for (const [name, arg] of Object.entries(args)) {
    if (arg.type === "positional") continue;
    const alias = "alias" in arg && typeof arg.alias === "string" ? arg.alias : undefined;
    specs[name] = { takesValue: arg.type === "string", ...(alias ? { short: alias } : {}) };
  }
  return specs;
}

/** Runs jb with `argv` (without the program name) and returns its exit status. */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    const top = normalizeArgv(argv, specsOf(connectionArgs), { trailing: true, command: "jb" });
    const [name, ...rest] = top.positionals;
    if (name === undefined || name === "help") {
      const topic =
        name === "help" && rest[0] !== undefined && Object.hasOwn(commands, rest[0]) ? rest[0] : "jb";
      await writeStdout(await usage(topic));
      return name === "help" || top.options.includes("--help") ? 0 : 2;
    }
    const command = commands[name];
    if (!command) {
      throw new UsageError(
        `unknown command "${name}": use start, list, status, log, stop or rm (see jb --help)`,
      );
    }
    const args = (command.args ?? {}) as ArgsDef;
    const parsed = normalizeArgv([...top.options, ...rest], specsOf(args), {
      trailing: name === "start",
      command: `jb ${name}`,
    });
    if (parsed.options.includes("--help")) {
      await writeStdout(await usage(name));
      return 0;
    }
    // start takes the job's argv, rm any number of ids; the others one id at most.
    const extra =
      name === "start" || name === "rm" ? [] : parsed.positionals.slice(Object.hasOwn(args, "id") ? 1 : 0);
    if (extra.length > 0) {
      throw new UsageError(`unexpected argument "${extra[0]}" for jb ${name}; see jb ${name} --help`);
    }
    const { result } = await runCommand(command, {
      rawArgs: [...parsed.options, "--", ...parsed.positionals],
    });
    return result as number;
  } catch (error) {
    // Failures are worded where they happen (errors.ts); anything else is a bug. Either way, one line.
    const message = error instanceof Error ? error.message : String(error);
    logger.error(message.replace(/\s*\n\s*/g, " ").trim());
    return error instanceof UsageError || error instanceof Failure ? error.exitStatus : 1;
  }
}

main(process.argv.slice(2)).then((exitStatus) => process.exit(exitStatus));
