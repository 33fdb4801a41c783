// The API's contract as clients see it on the wire: field numbers that never
// change, the methods grpc-js serves, and messages that survive the trip.
import { describe, expect, test } from "bun:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  FollowJobLogResponseSchema,
  JobSchema,
  JobService,
  JobStatus,
  jobServiceDefinition,
  LimitsSchema,
  StartJobRequestSchema,
} from "../src/index";

/** A protobuf field key: (number << 3) | wire type. */
const key = (field: number, wireType: number) => (field << 3) | wireType;
const VARINT = 0;
const FIXED64 = 1;
const LENGTH = 2;

describe("wire format", () => {
  test("Limits keeps the original API's field numbers and adds log_bytes = 6, timeout_seconds = 7", () => {
    const bytes = toBinary(
      LimitsSchema,
      create(LimitsSchema, { pidsMax: 5n, logBytes: 6n, timeoutSeconds: 0.5 }),
    );
    // pids_max (5) = 5, log_bytes (6) = 6, timeout_seconds (7) = 0.5 as a little-endian double.
    const half = Buffer.alloc(8);
    half.writeDoubleLE(0.5);
    expect(Buffer.from(bytes)).toEqual(
      Buffer.from([key(5, VARINT), 5, key(6, VARINT), 6, key(7, FIXED64), ...half]),
    );
  });

  test("a Job from an older or newer peer decodes by number: id 1, status 5, log_truncated 12", () => {
    const bytes = Buffer.from([key(1, VARINT), 42, key(5, VARINT), JobStatus.TIMED_OUT, key(12, VARINT), 1]);
    const job = fromBinary(JobSchema, bytes);
    expect(job).toMatchObject({ id: 42n, status: JobStatus.TIMED_OUT, logTruncated: true });
    expect(JobStatus.TIMED_OUT).toBe(7);
  });

  test("StartJobRequest: command 1, args 2, limits 3, env 4, workdir 5", () => {
    const request = create(StartJobRequestSchema, { args: ["a"], env: ["K=V"], workdir: "/w" });
    const ascii = (text: string) => [...Buffer.from(text)];
    expect(Buffer.from(toBinary(StartJobRequestSchema, request))).toEqual(
      Buffer.from([
        key(2, LENGTH),
        1,
        ...ascii("a"),
        key(4, LENGTH),
        3,
        ...ascii("K=V"),
        key(5, LENGTH),
        2,
        ...ascii("/w"),
      ]),
    );
  });
});

describe("grpc-js service definition", () => {
  test("serves every method of the descriptor under its full name; only FollowJobLog streams", () => {
    const names = JobService.methods.map((method) => method.name).sort();
    expect(names).toEqual([
      "FollowJobLog",
      "GetJob",
      "GetJobLog",
      "GetJobs",
      "RemoveJob",
      "StartJob",
      "StopJob",
    ]);
    for (const method of JobService.methods) {
      const definition = jobServiceDefinition[method.localName as keyof typeof jobServiceDefinition];
      if (!definition) throw new Error(`no definition for ${method.name}`);
      expect(definition.path).toBe(`/jobber.v1.JobService/${method.name}`);
      expect(definition.requestStream).toBe(false);
      expect(definition.responseStream).toBe(method.name === "FollowJobLog");
    }
  });

  test("requests and responses round-trip through the definition's serializers, bytes intact", () => {
    const { startJob, followJobLog } = jobServiceDefinition;
    const request = create(StartJobRequestSchema, {
      args: ["printf", "\u00ff\0"],
      limits: { memoryBytes: 1n << 40n, cpus: 0.25 },
    });
    expect(startJob.requestDeserialize(startJob.requestSerialize(request))).toEqual(request);
    const chunk = create(FollowJobLogResponseSchema, { data: new Uint8Array([0, 255, 128]) });
    expect(followJobLog.responseDeserialize(followJobLog.responseSerialize(chunk))).toEqual(chunk);
  });

  test("one response written to many streams is encoded once", () => {
    const { followJobLog } = jobServiceDefinition;
    const chunk = create(FollowJobLogResponseSchema, { data: new Uint8Array(1024) });
    expect(followJobLog.responseSerialize(chunk)).toBe(followJobLog.responseSerialize(chunk));
    const same = create(FollowJobLogResponseSchema, { data: new Uint8Array(1024) });
    expect(followJobLog.responseSerialize(same)).not.toBe(followJobLog.responseSerialize(chunk));
  });
});
