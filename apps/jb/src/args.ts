// What the user typed, made plain: single-dash long flags (`-json`), short
// flags and clusters (`-fq`), `--name=value`, and the job's own argv after the
// options; sizes, rates, core counts and job ids checked before any call.
import { UsageError } from "./failure";

/** Where jb looks for jobberd without --addr or JOBBER_ADDR. */
export const DEFAULT_ADDR = "localhost:50051";

/** An option as the normaliser needs to know it, keyed by its long name. */
export interface OptionSpec {
  /** `--memory 256M` takes a value; `--json` does not. */
  takesValue: boolean;
  /** One letter, e.g. "f" for `-f`. */
  short?: string;
  /** May be given more than once (`-e A=1 -e B=2`); every value counts. */
  multiple?: boolean;
}

export type OptionSpecs = Record<string, OptionSpec>;

export interface NormalizedArgs {
  /** Every option in one form: `--name` or `--name value`, long names only. */
  options: string[];
  /** The arguments that are not options, untouched. */
  positionals: string[];
}

/**
 * Rewrites argv into the canonical form citty parses without surprises:
 * `-json` → `--json`, `-fq` → `-f -q` → `--follow --quiet`, `--memory=1G` →
 * `--memory 1G`. An unknown option is an error, not silently ignored.
 *
 * With `trailing`, the first positional and everything after it are left
 * as they are (the job's argv, or a subcommand's), so `jb start -f ls -la`
 * runs `ls -la`. A `--` always ends the options.
 */
export function normalizeArgv(
  argv: readonly string[],
  specs: OptionSpecs,
  { trailing, command }: { trailing: boolean; command: string },
): NormalizedArgs {
  const options: string[] = [];
  const positionals: string[] = [];
  const byShort = new Map<string, string>();
  for (const [name, spec] of Object.entries(specs)) if (spec.short) byShort.set(spec.short, name);
  const unknown = (token: string) =>
    new UsageError(`unknown option ${token} for ${command}; see ${command} --help`);

  let i = 0;
  const take = (name: string, inline: string | undefined) => {
    const spec = specs[name] as OptionSpec;
    if (!spec.takesValue) {
      if (inline !== undefined) throw new UsageError(`option --${name} takes no value`);
      options.push(`--${name}`);
      return;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new UsageError(`option --${name} needs a value; see ${command} --help`);
    options.push(`--${name}`, value);
  };

  for (; i < argv.length; i++) {
    const token = argv[i] as string;
    if (token === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!token.startsWith("-") || token === "-") {
      if (trailing) {
        positionals.push(...argv.slice(i));
        break;
      }
      positionals.push(token);
      continue;
    }
    const body = token.replace(/^--?/, "");
    const equals = body.indexOf("=");
    const name = equals < 0 ? body : body.slice(0, equals);
    const inline = equals < 0 ? undefined : body.slice(equals + 1);
    // A long name, with one dash or two (the original jb's `-json`).
    if (name.length > 1 && Object.hasOwn(specs, name)) {
      take(name, inline);
      continue;
    }
    // Short flags, alone (`-f`, `-h`) or clustered (`-fq`); only the last may take a value.
    if (!token.startsWith("--") && inline === undefined) {
      const letters = [...body];
      const names = letters.map((letter) => byShort.get(letter));
      if (names.every((n) => n !== undefined)) {
        names.forEach((n, index) => {
          if (specs[n]?.takesValue && index < names.length - 1) throw unknown(token);
          take(n, undefined);
        });
        continue;
      }
    }
    throw unknown(token);
  }
  return { options, positionals };
}

const UNITS: Record<string, number> = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };
const SIZE = /^(\d+(?:\.\d+)?|\.\d+)\s*(?:([KMGT])(?:i?B)?|B)?$/i;

/** A positive whole number of bytes or less than 2^53. */
function positiveBytes(value: number): number | undefined {
  const bytes = Math.floor(value);
  return bytes > 0 && Number.isSafeInteger(bytes) ? bytes : undefined;
}

/**
 * `256M`, `1G`, `512K`, `1.5G`, `256MiB`, `64KB` or plain bytes; binary units
 * (1K = 1024 bytes, 1M = 1024K, 1G = 1024M, 1T = 1024G).
 */
export function parseSize(flag: string, text: string): bigint {
  const match = SIZE.exec(text.trim());
  const bytes = match
    ? positiveBytes(Number(match[1]) * (UNITS[(match[2] ?? "").toUpperCase()] ?? 0))
    : undefined;
  if (bytes === undefined) throw new UsageError(`invalid ${flag} "${text}": use a size like 256M or 1G`);
  return BigInt(bytes);
}

/** A throughput: a size per second, the `/s` optional (`10M/s` or `10M`). */
export function parseRate(flag: string, text: string): bigint {
  const size = text.trim().replace(/\/s(ec)?$/i, "");
  try {
    return parseSize(flag, size);
  } catch {
    throw new UsageError(`invalid ${flag} "${text}": use a rate like 10M or 10M/s (bytes per second)`);
  }
}

/** CPU cores, e.g. 0.5 or 2. */
export function parseCpus(flag: string, text: string): number {
  const cores = /^(\d+(\.\d+)?|\.\d+)$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!(cores > 0)) throw new UsageError(`invalid ${flag} "${text}": use a number of cores like 0.5 or 2`);
  return cores;
}

/** A count: a positive whole number. */
export function parseCount(flag: string, text: string): bigint {
  const count = /^\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!(count > 0) || !Number.isSafeInteger(count)) {
    throw new UsageError(`invalid ${flag} "${text}": use a whole number like 100`);
  }
  return BigInt(count);
}

const DURATION_UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };

/** A wall-clock duration in seconds: `90`, `90s`, `10m`, `1h30m`, `1.5h`, `2d`. */
export function parseDuration(flag: string, text: string): number {
  const parts = [...text.trim().matchAll(/(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h|d)?/g)];
  const joined = parts.map((part) => part[0]).join("");
  const seconds = parts.reduce(
    (sum, part) => sum + Number(part[1]) * (DURATION_UNITS[part[2] ?? "s"] ?? 0),
    0,
  );
  if (parts.length === 0 || joined !== text.trim() || !(seconds > 0) || !Number.isFinite(seconds)) {
    throw new UsageError(`invalid ${flag} "${text}": use a duration like 90s, 10m or 1h30m`);
  }
  return seconds;
}

/**
 * `-e KEY=VALUE` as given, or `-e KEY` for KEY's value in jb's own
 * environment (as `docker run -e KEY` does).
 */
export function parseEnvEntry(
  text: string,
  environment: Record<string, string | undefined> = process.env,
): string {
  const equals = text.indexOf("=");
  if (equals === 0) throw new UsageError(`invalid -e "${text}": use KEY=VALUE`);
  if (equals > 0) return text;
  const value = environment[text];
  if (value === undefined) {
    throw new UsageError(
      `-e ${text}: ${text} is not set in this shell; give it a value with -e ${text}=VALUE`,
    );
  }
  return `${text}=${value}`;
}

/** A job id as `jb list` shows it. */
export function parseJobId(text: string | undefined, command: string): bigint {
  if (text === undefined || text === "") {
    throw new UsageError(`${command} needs a job id, e.g. ${command} 12; jb list shows your jobs`);
  }
  const id = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!(id > 0) || !Number.isSafeInteger(id)) {
    throw new UsageError(`invalid job id "${text}": use the number jb list shows, e.g. ${command} 12`);
  }
  return BigInt(id);
}
