// The one table from library errors to gRPC statuses: every code a library
// failure carries reaches the client as the status of that name, whatever
// the failure was about (a job, a certificate, the host's setup).
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { type ErrorCode, ensurePrivateDir, JobberError } from "@jobber/jobber";
import { REASON_KEY } from "@jobber/proto";
import { toServiceError } from "../src/status-codes";

describe("library errors as gRPC statuses", () => {
  test("each code is the status of that name, with the message untouched", () => {
    const codes: ErrorCode[] = [
      "INVALID_ARGUMENT",
      "NOT_FOUND",
      "FAILED_PRECONDITION",
      "RESOURCE_EXHAUSTED",
      "INTERNAL",
    ];
    for (const code of codes) {
      expect(toServiceError(new JobberError(code, `a ${code} failure`))).toMatchObject({
        code: status[code],
        details: `a ${code} failure`,
      });
    }
  });

  test("a failure of the host's setup met during a call is FAILED_PRECONDITION, not an internal error", () => {
    const dir = mkdtempSync(join(tmpdir(), "jobber-status-"));
    try {
      symlinkSync("/tmp", join(dir, "pool"));
      let failure: unknown;
      try {
        ensurePrivateDir(join(dir, "pool"), "client pool");
      } catch (error) {
        failure = error;
      }
      expect(toServiceError(failure)).toMatchObject({ code: status.FAILED_PRECONDITION });
      expect(toServiceError(failure).details).toContain("symbolic link");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a reason travels in the trailing metadata; an unexpected error is INTERNAL", () => {
    const missing = toServiceError(
      new JobberError("INVALID_ARGUMENT", "command not found: nope", { reason: "COMMAND_NOT_FOUND" }),
    );
    expect(missing.metadata?.get(REASON_KEY)).toEqual(["COMMAND_NOT_FOUND"]);
    expect(toServiceError(new Error("boom"))).toMatchObject({
      code: status.INTERNAL,
      details: "internal error: boom; see the jobberd log",
    });
  });
});
