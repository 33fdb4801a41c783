// POSIX shell quoting, without a shell: a bare command line is split into
// words (no expansion of any kind) and argv is joined back for display.
import { JobberError } from "./errors";

/** Splits a command line into words by POSIX quoting rules; no variables, globs or substitutions. */
export function splitCommandLine(line: string): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let i = 0;
  const fail = (what: string): never => {
    throw new JobberError("INVALID_ARGUMENT", `command line has ${what}: ${line}`);
  };
  while (i < line.length) {
    const c = line[i] as string;
    if (c === " " || c === "\t" || c === "\n") {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
      i++;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) fail("an unterminated single quote");
      word += line.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      inWord = true;
      i++;
      for (;;) {
        if (i >= line.length) fail("an unterminated double quote");
        const d = line[i] as string;
        if (d === '"') break;
        // Inside double quotes a backslash escapes only these characters.
        if (d === "\\" && i + 1 < line.length && '"\\$`\n'.includes(line[i + 1] as string)) {
          if (line[i + 1] !== "\n") word += line[i + 1];
          i += 2;
        } else {
          word += d;
          i++;
        }
      }
      i++;
    } else if (c === "\\") {
      if (i + 1 >= line.length) fail("a trailing backslash");
      if (line[i + 1] !== "\n") {
        word += line[i + 1];
        inWord = true;
      }
      i += 2;
    } else {
      word += c;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(word);
  return words;
}

const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** Joins argv into a line that splitCommandLine turns back into the same argv. */
export function joinCommandLine(argv: readonly string[]): string {
  return argv.map((arg) => (SAFE_WORD.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`)).join(" ");
}
