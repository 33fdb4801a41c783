// jobberd's command line, read from its commands' argument definitions (the
// citty `args` objects in main.ts), so that a flag added there is parsed,
// shown in --help and accepted as a config-file key with nothing else to do.
//
// Precedence: a flag on the command line, then the key of the same name in
// the `--config` file (TOML: `state-dir = "/var/lib/jobber"`, a list flag as
// an array), then the flag's default.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { type ArgsDef, type CommandDef, renderUsage } from "citty";

/** A citty argument definition; `multiple: true` makes a flag a list (`--san a --san b`, `san = ["a", "b"]`). */
export type FlagDef = ArgsDef[string] & { multiple?: boolean };

export type FlagValue = string | boolean | string[];
export type FlagValues = Record<string, FlagValue | undefined> & { _: string[] };

// biome-ignore lint/suspicious/noExplicitAny: any command's flags are read the same way.
type Command = CommandDef<any>;

/** A mistake in how jobberd was called: one line, exit status 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** The flags a command takes, each as citty defines it plus the `multiple` mark. */
function flagsOf(command: Command): Record<string, FlagDef> {
  return (command.args ?? {}) as Record<string, FlagDef>;
}

/** The command line's own flags, nothing filled in. An unknown flag is an error, not ignored. */
export function parseCommandLine(argv: readonly string[], command: Command, name: string): FlagValues {
  const options: NonNullable<Parameters<typeof parseArgs>[0]>["options"] = {};
  for (const [flag, def] of Object.entries(flagsOf(command))) {
    if (def.type === "positional") continue;
    options[flag] = {
      type: def.type === "boolean" ? "boolean" : "string",
      ...(def.multiple ? { multiple: true } : {}),
      ...("alias" in def && typeof def.alias === "string" && def.alias.length === 1
        ? { short: def.alias }
        : {}),
    };
  }
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      options,
      allowPositionals: true,
      strict: true,
    });
    return { ...(values as Record<string, FlagValue>), _: positionals };
  } catch (error) {
    // node:util words these well ("Unknown option '--x'"); add where to look.
    const message = (error as Error).message.replace(/\. To specify a positional argument.*$/, "");
    throw new UsageError(`${message}; see ${name} --help`);
  }
}

/** Reads a TOML config file into flag values, checking every key against the flags jobberd knows. */
export function readConfigFile(path: string, known: Command): Record<string, FlagValue> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new UsageError(
      `--config ${path}: ${(error as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (error as Error).message}`,
    );
  }
  let table: Record<string, unknown>;
  try {
    table = Bun.TOML.parse(text) as Record<string, unknown>;
  } catch (error) {
    throw new UsageError(`--config ${path}: not valid TOML: ${(error as Error).message}`);
  }
  const flags = flagsOf(known);
  const values: Record<string, FlagValue> = {};
  for (const [key, value] of Object.entries(table)) {
    const def = flags[key];
    if (def === undefined || def.type === "positional" || key === "config") {
      const keys = Object.keys(flags).filter(
        (flag) => flags[flag]?.type !== "positional" && flag !== "config",
      );
      throw new UsageError(
        `--config ${path}: unknown key "${key}"; keys are the flags without dashes: ${keys.join(", ")}`,
      );
    }
    values[key] = configValue(path, key, def, value);
  }
  return values;
}

function configValue(path: string, key: string, def: FlagDef, value: unknown): FlagValue {
  const wrong = (expected: string) =>
    new UsageError(`--config ${path}: ${key} must be ${expected}, not ${JSON.stringify(value)}`);
  const scalar = (item: unknown): string => {
    if (typeof item === "string") return item;
    if (typeof item === "number" && Number.isFinite(item)) return String(item);
    throw wrong(def.multiple ? "an array of strings" : "a string or a number");
  };
  if (def.multiple && !Array.isArray(value)) throw wrong('an array of strings, e.g. ["a", "b"]');
  if (def.type === "boolean") {
    if (typeof value !== "boolean") throw wrong("true or false");
    return value;
  }
  if (Array.isArray(value) && def.multiple) return value.map(scalar);
  if (Array.isArray(value)) throw wrong("a single value");
  return scalar(value);
}

/** Command line over config file over defaults. */
export function resolveFlags(
  commandLine: FlagValues,
  config: Record<string, FlagValue>,
  command: Command,
): FlagValues {
  const resolved: FlagValues = { _: commandLine._ };
  for (const [flag, def] of Object.entries(flagsOf(command))) {
    if (def.type === "positional") continue;
    const value = commandLine[flag] ?? config[flag] ?? ("default" in def ? def.default : undefined);
    if (value !== undefined)
      resolved[flag] = def.multiple && !Array.isArray(value) ? [String(value)] : (value as FlagValue);
  }
  return resolved;
}

/** The positional arguments as named by the command's positional definitions. */
export function namePositionals(values: FlagValues, command: Command, name: string): void {
  const positionals = Object.entries(flagsOf(command)).filter(([, def]) => def.type === "positional");
  if (values._.length > positionals.length) {
    throw new UsageError(`unexpected argument "${values._[positionals.length]}"; see ${name} --help`);
  }
  positionals.forEach(([flag, def], index) => {
    const value = values._[index];
    if (value === undefined && def.required)
      throw new UsageError(`${name} needs <${flag.toUpperCase()}>; see ${name} --help`);
    if (value !== undefined) values[flag] = value;
  });
  for (const [flag, def] of Object.entries(flagsOf(command))) {
    if (def.type !== "positional" && def.required && values[flag] === undefined) {
      throw new UsageError(`${name} needs --${flag}; see ${name} --help`);
    }
  }
}

/** citty's usage, without colour when stdout is not a terminal (`jobberd --help | less`). */
export async function usage(command: Command, parent?: Command): Promise<string> {
  const rendered = await renderUsage(command, parent);
  const text = process.stdout.isTTY && !process.env.NO_COLOR ? rendered : Bun.stripANSI(rendered);
  return `${text.replace(/[ \t]+$/gm, "")}\n`;
}
