// Argv normalisation and the parsers of sizes, rates, counts and ids.
import { describe, expect, test } from "bun:test";
import {
  normalizeArgv,
  type OptionSpecs,
  parseCount,
  parseCpus,
  parseJobId,
  parseRate,
  parseSize,
} from "../src/args";
import { UsageError } from "../src/failure";

const startSpecs: OptionSpecs = {
  follow: { takesValue: false, short: "f" },
  quiet: { takesValue: false, short: "q" },
  json: { takesValue: false },
  memory: { takesValue: true },
  "io-read": { takesValue: true },
  home: { takesValue: true },
  help: { takesValue: false, short: "h" },
};
const start = (argv: string[]) => normalizeArgv(argv, startSpecs, { trailing: true, command: "jb start" });
const status = (argv: string[]) =>
  normalizeArgv(argv, { json: { takesValue: false } }, { trailing: false, command: "jb status" });

describe("normalizeArgv", () => {
  test("-json and --json are the same option", () => {
    expect(status(["-json", "5"])).toEqual({ options: ["--json"], positionals: ["5"] });
    expect(status(["--json", "5"])).toEqual({ options: ["--json"], positionals: ["5"] });
    expect(status(["5", "-json"])).toEqual({ options: ["--json"], positionals: ["5"] });
  });

  test("short flags, alone or clustered, become long ones", () => {
    expect(start(["-f", "-q", "ls"]).options).toEqual(["--follow", "--quiet"]);
    expect(start(["-fq", "ls"]).options).toEqual(["--follow", "--quiet"]);
    expect(start(["-h"]).options).toEqual(["--help"]);
  });

  test("values: separate, after =, with one dash or two", () => {
    expect(start(["--memory", "256M", "-io-read=10M/s", "-memory=1G", "ls"]).options).toEqual([
      "--memory",
      "256M",
      "--io-read",
      "10M/s",
      "--memory",
      "1G",
    ]);
    // A value that looks like an option is still the value.
    expect(start(["--home", "-odd-dir", "ls"]).options).toEqual(["--home", "-odd-dir"]);
  });

  test("start: the job's argv begins at the first positional and is left untouched", () => {
    expect(start(["-f", "ls", "-la", "--json", "--", "x"])).toEqual({
      options: ["--follow"],
      positionals: ["ls", "-la", "--json", "--", "x"],
    });
  });

  test("-- ends the options; what follows may start with a dash", () => {
    expect(start(["-json", "--", "-weird", "--help"])).toEqual({
      options: ["--json"],
      positionals: ["-weird", "--help"],
    });
    expect(status(["--", "-1"])).toEqual({ options: [], positionals: ["-1"] });
  });

  test("unknown options are errors, not ignored", () => {
    expect(() => status(["--jsn", "5"])).toThrow(
      new UsageError("unknown option --jsn for jb status; see jb status --help"),
    );
    expect(() => status(["-x"])).toThrow(UsageError);
    expect(() => start(["-fx", "ls"])).toThrow(UsageError);
    expect(() => status(["-5"])).toThrow(UsageError);
  });

  test("a missing value, or a value given to a flag, is an error", () => {
    expect(() => start(["--memory"])).toThrow(
      new UsageError("option --memory needs a value; see jb start --help"),
    );
    expect(() => start(["--json=yes", "ls"])).toThrow(new UsageError("option --json takes no value"));
  });
});

describe("parseSize", () => {
  test("binary units, with or without B / iB, any case", () => {
    expect(parseSize("--memory", "256M")).toBe(256n * 1024n * 1024n);
    expect(parseSize("--memory", "1G")).toBe(1024n ** 3n);
    expect(parseSize("--memory", "512K")).toBe(512n * 1024n);
    expect(parseSize("--memory", "2T")).toBe(2n * 1024n ** 4n);
    expect(parseSize("--memory", "256MiB")).toBe(256n << 20n);
    expect(parseSize("--memory", "256mb")).toBe(256n << 20n);
    expect(parseSize("--memory", "1.5G")).toBe(3n << 29n);
  });

  test("plain numbers are bytes", () => {
    expect(parseSize("--memory", "1048576")).toBe(1048576n);
    expect(parseSize("--memory", "100B")).toBe(100n);
  });

  test("anything else is an error naming the flag and an example", () => {
    for (const bad of ["12XB", "", "M", "-1M", "0", "1.5.5G", "10M/s", "1e6", "0.1"]) {
      expect(() => parseSize("--memory", bad)).toThrow(
        new UsageError(`invalid --memory "${bad}": use a size like 256M or 1G`),
      );
    }
  });
});

describe("parseRate", () => {
  test("a size per second; /s optional", () => {
    expect(parseRate("--io-read", "10M/s")).toBe(10n << 20n);
    expect(parseRate("--io-read", "10M")).toBe(10n << 20n);
    expect(parseRate("--io-write", "512K/s")).toBe(512n << 10n);
  });

  test("bad rates name the flag", () => {
    expect(() => parseRate("--io-write", "fast")).toThrow(
      new UsageError(`invalid --io-write "fast": use a rate like 10M or 10M/s (bytes per second)`),
    );
  });
});

describe("parseCpus, parseCount, parseJobId", () => {
  test("cpus: positive decimals", () => {
    expect(parseCpus("--cpus", "0.5")).toBe(0.5);
    expect(parseCpus("--cpus", "2")).toBe(2);
    for (const bad of ["0", "-1", "half", "", "1e3"])
      expect(() => parseCpus("--cpus", bad)).toThrow(UsageError);
  });

  test("pids: positive whole numbers", () => {
    expect(parseCount("--pids", "100")).toBe(100n);
    for (const bad of ["0", "1.5", "-3", "many", "99999999999999999999"]) {
      expect(() => parseCount("--pids", bad)).toThrow(UsageError);
    }
  });

  test("job ids: positive whole numbers, else a usage error that shows how", () => {
    expect(parseJobId("12", "jb stop")).toBe(12n);
    expect(() => parseJobId("abc", "jb stop")).toThrow(
      new UsageError(`invalid job id "abc": use the number jb list shows, e.g. jb stop 12`),
    );
    expect(() => parseJobId(undefined, "jb log")).toThrow(
      new UsageError("jb log needs a job id, e.g. jb log 12; jb list shows your jobs"),
    );
    for (const bad of ["0", "-1", "1.0", "12abc", "9007199254740993"]) {
      expect(() => parseJobId(bad, "jb status")).toThrow(UsageError);
    }
  });
});
