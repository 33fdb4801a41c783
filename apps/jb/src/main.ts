#!/usr/bin/env bun
// jb, jobber's command-line client. This file is its surface: the commands,
// their flags and help, and the dispatch. What each command does is in
// commands.ts, loaded only when one runs (gRPC takes ~40 ms to load; --help
// and a usage error need none of it).
import { type ArgsDef, type CommandDef, defineCommand, renderUsage, runCommand } from "citty";
import { DEFAULT_ADDR, normalizeArgv, type OptionSpecs } from "./args";
import { Failure, UsageError } from "./failure";
import { logger, writeStdout } from "./output";
import { VERSION } from "./version";

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
    timeout: {
      type: "string",
      valueHint: "duration",
      description: "stop the job once it has run this long, e.g. 90s, 10m, 1h30m",
    },
    env: {
      type: "string",
      alias: "e",
      valueHint: "KEY=VALUE",
      multiple: true,
      description: "set an environment variable (repeatable; -e KEY passes this shell's value)",
    },
    workdir: {
      type: "string",
      alias: "w",
      valueHint: "dir",
      description: "working directory inside the job's view (default /)",
    },
    command: {
      type: "positional",
      required: false,
      description: "the program and its arguments, after the options (or after --)",
    },
    ...connectionArgs,
  },
  run: async ({ args, data }) =>
    (await commandsModule()).start({ ...args, argv: args._, env: listsOf(data).env }),
});

const list = defineCommand({
  meta: { name: "list", description: "List your jobs, oldest first." },
  args: {
    quiet: { type: "boolean", alias: "q", description: "print only the ids, one a line" },
    ...jsonArg,
    ...connectionArgs,
  },
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
    description: "Stop running jobs: SIGTERM, then SIGKILL after the daemon's grace period.",
  },
  args: {
    ...jsonArg,
    ids: { type: "positional", required: false, description: "the jobs' ids, as jb list shows them" },
    ...connectionArgs,
  },
  run: async ({ args }) => (await commandsModule()).stop({ ...args, ids: args._ }),
});

const completion = defineCommand({
  meta: { name: "completion", description: "Print a shell completion script: bash, zsh or fish." },
  args: {
    shell: { type: "positional", required: false, description: "bash, zsh or fish" },
    help: connectionArgs.help,
  },
  run: async ({ args }) => {
    const { completionScript } = await import("./completion");
    await writeStdout(completionScript(args.shell, commands));
    return 0;
  },
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
const commands: Record<string, CommandDef<any>> = { start, list, status, log, stop, rm, completion };

/** Values of options given more than once (`-e A=1 -e B=2`), handed to a command beside citty's args. */
type Lists = Record<string, string[]>;

function listsOf(data: unknown): Lists {
  return (data as { lists?: Lists } | undefined)?.lists ?? {};
}

const root = defineCommand({
  meta: {
    name: "jb",
    version: VERSION,
    description: "Run and watch jobs on a jobberd server (gRPC over mTLS).",
  },
  args: {
    ...connectionArgs,
    version: { type: "boolean", description: "print jb's version" },
  },
  subCommands: commands,
});

const EXAMPLES: Record<string, string> = {
  jb: `EXAMPLES

  jb start -- sh -c 'echo hello; sleep 30'
  jb list
  jb log -f 12
  jb stop 12 13
  jb rm 12 13
  JOBBER_ADDR=build-box:50051 jb --home ~/.jobber-ci list -json
  source <(jb completion bash)

Each command has its own help: jb start --help. Long options work with one dash
or two (-json, --json). Failures print one line on stderr and exit non-zero.`,
  start: `EXAMPLES

  jb start -- ls -lah /                 print the new job as a table
  jb start -q -- make test              print only the id (for scripts)
  jb start -f -- sh -c 'exit 3'         stream its output; jb exits 3 too
  jb start --memory 256M --cpus 0.5 --pids 100 --io-write 10M/s -- make
  jb start -e MODE=fast -e HOME -w /srv/app --timeout 10m -- ./build.sh
  jb start --log 64M -- ./chatty.sh     keep at most 64 MiB of its output

Options go before the command; everything from the command on is the job's
argv (use -- when the command itself starts with a dash). Need a shell? Ask
for one: jb start -- sh -c 'a | b'.

Sizes use binary units: 512K = 512 KiB, 256M = 256 MiB, 1G = 1 GiB (KiB/MiB/GiB
and KB/MB/GB spellings also mean 1024-based); plain numbers are bytes. I/O
rates are bytes per second, the /s optional (10M = 10M/s). Unset limits get
the daemon's defaults; limits over the daemon's maximums are refused.
--timeout stops the job (as jb stop does) once it has run that long; its
status is then Timed out.

At its --log size the job's log is full: the write that reaches the cap is cut
short, later ones fail with EFBIG ("File too large"), and jb status says "log
truncated".

A relative command (./build.sh) is found from the working directory (-w);
a bare name on the job's PATH (-e PATH=… replaces the default one).

With -f, stdout carries the job's raw bytes and jb exits with the job's code
(128 + signal number when a signal ended it, e.g. 137 for SIGKILL or an OOM
kill; 124 when its timeout stopped it). If jobberd restarts meanwhile, jb
reconnects and carries on from the last byte it printed. Ctrl+C detaches: the
job keeps running.

Like docker run, jb start exits 127 when the program does not exist and 126
when it cannot be executed.`,
  list: `EXAMPLES

  jb list
  jb list -q                     ids only, one a line
  jb list -json | jq '.[] | select(.status == "running") | .id'`,
  status: `EXAMPLES

  jb status 12
  jb status -json 12 | jq .exit_code

Statuses: Running, Exited (code), Stopped, Killed (signal), OOM killed, Failed,
Timed out; ", log truncated" when output was dropped at the log's cap.
In JSON: running, exited, stopped, killed, oom_killed, failed, timed_out, and
log_truncated.`,
  log: `EXAMPLES

  jb log 12             the output so far, whatever its size
  jb log -f 12          follow until the job ends; Ctrl+C detaches, the job keeps running
  jb log 12 > out.bin   output is bytes, written as they are

A follow survives a jobberd restart: jb reconnects (for about 30 s) and
resumes from the last byte it printed.`,
  stop: `EXAMPLES

  jb stop 12
  jb stop 12 13 14                 stops them together
  jb stop $(jb list -q)
  jb stop -json 12`,
  rm: `EXAMPLES

  jb rm 12              remove a finished job and its log
  jb rm 12 13 14        each in turn; prints the ids it removed

A running job cannot be removed: stop it first (jb stop 12). jobberd also
removes finished jobs by itself after its retention (a week by default).`,
  completion: `EXAMPLES

  source <(jb completion bash)                        in ~/.bashrc
  jb completion zsh > "\${fpath[1]}/_jb"                 then restart zsh
  jb completion fish > ~/.config/fish/completions/jb.fish

Job ids complete from jb list -q.`,
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
    .replace("[IDS]", "<ID>...")
    .replace("[SHELL]", "<bash|zsh|fish>")
    .replace(/[ \t]+$/gm, "");
}

/** The CommandDef's options in the form the normaliser reads. */
function specsOf(args: ArgsDef): OptionSpecs {
  const specs: OptionSpecs = {};
  for (const [name, arg] of Object.entries(args)) {
    if (arg.type === "positional") continue;
    const alias = "alias" in arg && typeof arg.alias === "string" ? arg.alias : undefined;
    const multiple = "multiple" in arg && arg.multiple === true;
    specs[name] = {
      takesValue: arg.type === "string",
      ...(alias ? { short: alias } : {}),
      ...(multiple ? { multiple } : {}),
    };
  }
  return specs;
}

/** Runs jb with `argv` (without the program name) and returns its exit status. */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    const top = normalizeArgv(argv, specsOf(root.args as ArgsDef), { trailing: true, command: "jb" });
    const [name, ...rest] = top.positionals;
    if (top.options.includes("--version")) {
      await writeStdout(`jb ${VERSION}\n`);
      return 0;
    }
    if (name === undefined || name === "help") {
      const topic =
        name === "help" && rest[0] !== undefined && Object.hasOwn(commands, rest[0]) ? rest[0] : "jb";
      await writeStdout(await usage(topic));
      return name === "help" || top.options.includes("--help") ? 0 : 2;
    }
    const command = commands[name];
    if (!command) {
      throw new UsageError(
        `unknown command "${name}": use ${Object.keys(commands).join(", ")} (see jb --help)`,
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
    const positionalCount =
      name === "start" || name === "stop" || name === "rm"
        ? Infinity
        : Object.hasOwn(args, "id") || Object.hasOwn(args, "shell")
          ? 1
          : 0;
    const extra = parsed.positionals.slice(positionalCount);
    if (extra.length > 0) {
      throw new UsageError(`unexpected argument "${extra[0]}" for jb ${name}; see jb ${name} --help`);
    }
    const specs = specsOf(args);
    const lists: Lists = {};
    for (let i = 0; i < parsed.options.length; i++) {
      const option = (parsed.options[i] as string).slice(2);
      if (!specs[option]?.takesValue) continue;
      const value = parsed.options[++i] as string;
      if (specs[option]?.multiple) lists[option] = [...(lists[option] ?? []), value];
    }
    const { result } = await runCommand(command, {
      rawArgs: [...parsed.options, "--", ...parsed.positionals],
      data: { lists },
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
