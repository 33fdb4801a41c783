// The original jb's table, status words, local times, the JSON shape and exit codes.
import { describe, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { type Job, JobSchema, JobStatus, LimitsSchema } from "@jobber/proto";
import {
  endingNote,
  exitCodeOf,
  jobJson,
  jobTable,
  localTime,
  statusText,
  truncationNote,
} from "../src/format";
import { renderTable } from "../src/table";

function job(fields: Partial<Omit<Job, "$typeName" | "limits">> = {}): Job {
  return create(JobSchema, {
    id: 123456n,
    command: "ls -lah /",
    args: ["ls", "-lah", "/"],
    createdAt: "2026-11-28T22:59:03Z",
    status: JobStatus.RUNNING,
    limits: create(LimitsSchema, {
      cpus: 0.5,
      memoryBytes: 256n << 20n,
      pidsMax: 100n,
      logBytes: 64n << 20n,
    }),
    ...fields,
  });
}

describe("renderTable", () => {
  test("the original jb's start table, cell for cell", () => {
    expect(
      renderTable(["ID", "Command", "Created", "Status"], [["123456", "ls -lah /", "some date", "Running"]]),
    ).toBe(`+---------------+---------------+---------------+---------------+
| ID            | Command       | Created       | Status        |
+---------------+---------------+---------------+---------------+
| 123456        | ls -lah /     | some date     | Running       |
+---------------+---------------+---------------+---------------+
`);
  });

  test("the original jb's list table: a column grows to its longest cell, a rule under every row", () => {
    const rows = [
      ["123456", "ls -lah /", "some date", "Running"],
      ["654321", 'echo "hello world"', "some date", "Finished"],
    ];
    expect(
      renderTable(["ID", "Command", "Created", "Status"], rows),
    ).toBe(`+---------------+--------------------+---------------+---------------+
| ID            | Command            | Created       | Status        |
+---------------+--------------------+---------------+---------------+
| 123456        | ls -lah /          | some date     | Running       |
+---------------+--------------------+---------------+---------------+
| 654321        | echo "hello world" | some date     | Finished      |
+---------------+--------------------+---------------+---------------+
`);
  });

  test("control characters are escaped, so a row stays one line", () => {
    const table = renderTable(["Command"], [["printf 'a\nb\tc\u0000'"]]);
    expect(table).toContain("| printf 'a\\nb\\tc\\x00' |");
    expect(table.split("\n")).toHaveLength(6);
  });

  test("non-ASCII characters count once", () => {
    expect(renderTable(["Command"], [["échö ✓"]])).toContain("| échö ✓        |");
  });
});

describe("statusText", () => {
  test("every status", () => {
    expect(statusText(job())).toBe("Running");
    expect(statusText(job({ status: JobStatus.EXITED, exitCode: 3 }))).toBe("Exited (3)");
    expect(statusText(job({ status: JobStatus.STOPPED, signal: "SIGTERM" }))).toBe("Stopped");
    expect(statusText(job({ status: JobStatus.KILLED, signal: "SIGSEGV" }))).toBe("Killed (SIGSEGV)");
    expect(statusText(job({ status: JobStatus.OOM_KILLED, signal: "SIGKILL" }))).toBe("OOM killed");
    expect(statusText(job({ status: JobStatus.FAILED }))).toBe("Failed");
  });
});

describe("localTime", () => {
  test("an RFC 3339 time in local time, seconds precision", () => {
    const date = new Date("2026-11-28T22:59:03.456Z");
    const pad = (n: number) => String(n).padStart(2, "0");
    const expected = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
    expect(localTime("2026-11-28T22:59:03.456Z")).toBe(expected);
    expect(localTime("2026-11-28T22:59:03.456Z")).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
  });

  test("absent or unreadable times are a dash", () => {
    expect(localTime("")).toBe("-");
    expect(localTime("yesterday")).toBe("-");
  });
});

describe("jobTable", () => {
  test("a heading over the table; long commands are shortened", () => {
    const long = `sh -c '${"x".repeat(100)}'`;
    const text = jobTable("Job started:", [job({ command: long })]);
    expect(text.startsWith("Job started:\n+---------------+")).toBe(true);
    expect(text).toContain(`| sh -c '${"x".repeat(52)}… |`);
  });
});

describe("jobJson", () => {
  test("numbers for ids and sizes, lowercase status, null for what is not there", () => {
    expect(jobJson(job())).toEqual({
      id: 123456,
      command: "ls -lah /",
      args: ["ls", "-lah", "/"],
      status: "running",
      finished: false,
      exit_code: null,
      signal: null,
      created_at: "2026-11-28T22:59:03Z",
      finished_at: null,
      failure_reason: null,
      log_truncated: false,
      limits: {
        cpus: 0.5,
        memory_bytes: 256 << 20,
        io_read_bps: 0,
        io_write_bps: 0,
        pids_max: 100,
        log_bytes: 64 << 20,
        timeout_seconds: 0,
      },
    });
  });

  test("exit code when it exited, signal when a signal ended it", () => {
    const exited = jobJson(job({ status: JobStatus.EXITED, finished: true, exitCode: 0, finishedAt: "x" }));
    expect(exited).toMatchObject({ status: "exited", exit_code: 0, signal: null, finished_at: "x" });
    const killed = jobJson(job({ status: JobStatus.OOM_KILLED, finished: true, signal: "SIGKILL" }));
    expect(killed).toMatchObject({ status: "oom_killed", exit_code: null, signal: "SIGKILL" });
  });
});

describe("exitCodeOf and endingNote", () => {
  test("the job's code; 128 + signal; 1 when it could not run", () => {
    expect(exitCodeOf(job({ status: JobStatus.EXITED, exitCode: 3 }))).toBe(3);
    expect(exitCodeOf(job({ status: JobStatus.KILLED, signal: "SIGKILL" }))).toBe(137);
    expect(exitCodeOf(job({ status: JobStatus.KILLED, signal: "SIGSEGV" }))).toBe(139);
    expect(exitCodeOf(job({ status: JobStatus.STOPPED, signal: "SIGTERM" }))).toBe(143);
    expect(exitCodeOf(job({ status: JobStatus.STOPPED, exitCode: 0 }))).toBe(0);
    expect(exitCodeOf(job({ status: JobStatus.OOM_KILLED, signal: "SIGKILL" }))).toBe(137);
    expect(exitCodeOf(job({ status: JobStatus.FAILED }))).toBe(126);
    expect(exitCodeOf(job({ status: JobStatus.TIMED_OUT, signal: "SIGTERM" }))).toBe(124);
  });

  test("a note on stderr only when the job did not simply exit", () => {
    expect(endingNote(job({ status: JobStatus.EXITED, exitCode: 1 }))).toBeUndefined();
    expect(endingNote(job({ status: JobStatus.OOM_KILLED }))).toBe(
      "job 123456 was killed by the OOM killer at its memory limit (256 MiB)",
    );
    expect(endingNote(job({ status: JobStatus.KILLED, signal: "SIGKILL" }))).toBe(
      "job 123456 was killed by SIGKILL",
    );
  });

  test("a note when the log reached its cap", () => {
    expect(truncationNote(job({ logTruncated: false }))).toBeUndefined();
    expect(truncationNote(job({ logTruncated: true }))).toBe(
      "job 123456's log reached its cap (64 MiB): output past it was dropped (jb start --log raises it)",
    );
  });
});
