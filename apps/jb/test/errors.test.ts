// gRPC failures as one line each, with what to do next.
import { describe, expect, test } from "bun:test";
import { status } from "@grpc/grpc-js";
import { ClientIdentityError } from "@jobber/proto";
import { describeError, exitStatusOf } from "../src/errors";
import { UsageError } from "../src/failure";

const target = { addr: "build-box:50051", home: "/home/ann/.jobber" };
const serviceError = (code: status, details: string) =>
  Object.assign(new Error(`${code} ${status[code]}: ${details}`), { code, details, metadata: {} });

describe("describeError", () => {
  test("connection refused: is it running, and how to start it", () => {
    const error = serviceError(
      status.UNAVAILABLE,
      "No connection established. Last error: Error: connect ECONNREFUSED 10.0.0.7:50051. Resolution note: ",
    );
    expect(describeError(error, target)).toBe(
      "cannot reach jobberd at build-box:50051 (connect ECONNREFUSED 10.0.0.7:50051): is it running? start it with: sudo ./scripts/bun run jobberd in a checkout (or point --addr / JOBBER_ADDR at it)",
    );
  });

  test("a server certificate that does not verify points at ca.crt", () => {
    const error = serviceError(
      status.UNAVAILABLE,
      "No connection established. Last error: Error: unable to verify the first certificate. Resolution note: ",
    );
    expect(describeError(error, target)).toBe(
      "TLS with jobberd at build-box:50051 failed (unable to verify the first certificate): check that /home/ann/.jobber/ca.crt is the CA of that server's certificate and --addr names it",
    );
  });

  test("refused certificates carry the daemon's reason", () => {
    const error = serviceError(status.UNAUTHENTICATED, "client certificate abc is not in the server's pool");
    expect(describeError(error, target)).toBe(
      "jobberd at build-box:50051 did not accept the certificate in /home/ann/.jobber: client certificate abc is not in the server's pool",
    );
  });

  test("job errors pass the daemon's sentence through, with a next step", () => {
    expect(describeError(serviceError(status.NOT_FOUND, "job 5 not found"), target)).toBe(
      "job 5 not found; jb list shows your jobs",
    );
    expect(describeError(serviceError(status.INVALID_ARGUMENT, "command not found: foo"), target)).toBe(
      "command not found: foo",
    );
    expect(describeError(serviceError(status.DEADLINE_EXCEEDED, "Deadline exceeded"), target)).toContain(
      "did not answer in time",
    );
  });

  test("identity and usage errors", () => {
    const missing = new ClientIdentityError("/x/client.crt: not found");
    expect(describeError(missing, target)).toBe(
      "/x/client.crt: not found; point --home or JOBBER_HOME at a client home",
    );
    expect(describeError(new UsageError("bad flag"), target)).toBe("bad flag");
    expect(exitStatusOf(new UsageError("bad flag"))).toBe(2);
    expect(exitStatusOf(missing)).toBe(1);
  });
});
