// jobber.v1.JobService on top of the job library. Each handler authenticates
// the caller, maps the request to one library call and the answer (or the
// error, through status-codes.ts) back. Nothing here knows what a cgroup is.
import { create } from "@bufbuild/protobuf";
import {
  type handleServerStreamingCall,
  type handleUnaryCall,
  type ServerUnaryCall,
  type ServerWritableStream,
  status,
} from "@grpc/grpc-js";
import { type Certificate, checkLogOffset, type JobInfo } from "@jobber/jobber";
import {
  type FollowJobLogRequest,
  type FollowJobLogResponse,
  FollowJobLogResponseSchema,
  type GetJobLogRequest,
  GetJobLogResponseSchema,
  type GetJobRequest,
  GetJobResponseSchema,
  GetJobsResponseSchema,
  type JobServiceImplementation,
  LOG_BYTES_KEY,
  type RemoveJobRequest,
  RemoveJobResponseSchema,
  type StartJobRequest,
  StartJobResponseSchema,
  type StopJobRequest,
  StopJobResponseSchema,
} from "@jobber/proto";
import { whenDelivered } from "./delivery";
import { argvFromRequest, jobId, jobMessage, limitsFromMessage } from "./messages";
import type { RequestLog } from "./request-log";
import { SendWindow } from "./send-window";
import type { ServerSurfaceCall } from "./server-call";
import { SnapshotBudget } from "./snapshot-budget";
import { RpcError, toServiceError } from "./status-codes";
import { TenantCounter } from "./tenant-counter";

/** GetJobLog answers in one message; past this size the log must be streamed. */
const MAX_LOG_SNAPSHOT_BYTES = 64 * 1024 * 1024;
/** Log snapshots in flight, all tenants together: two of the largest (one tenant: one). */
const SNAPSHOT_BUDGET_BYTES = 2 * MAX_LOG_SNAPSHOT_BYTES;
/** Log snapshots one tenant may have waiting for room in that budget. */
const SNAPSHOTS_WAITING_PER_TENANT = 16;
/**
 * Output handed to grpc-js and not yet sent, per FollowJobLog stream: what a
 * follower that never reads costs (each message exists about three times
 * over while it is sent: read, encoded, framed). One of the follower's
 * largest chunks; smaller ones go several at a time.
 */
const FOLLOW_WINDOW_BYTES = 128 * 1024;

export interface ServiceOptions {
  /** The caller's tenant; throws RpcError(UNAUTHENTICATED) with the reason. */
  authenticate(call: ServerSurfaceCall): Certificate;
  log: RequestLog;
  /** Concurrent FollowJobLog streams per tenant; 0 = no limit. */
  tenantStreams: number;
  /** A job has started (for the daemon's log and metrics). */
  onJobStarted?(tenant: Certificate, job: JobInfo): void;
}

export interface JobServiceHandle {
  implementation: JobServiceImplementation;
  /** Ends every open FollowJobLog stream with UNAVAILABLE (daemon shutdown). */
  endStreams(reason: string): void;
  /** FollowJobLog streams open now. */
  readonly openStreams: number;
}

function unary<Req, Res>(
  options: ServiceOptions,
  rpc: string,
  handle: (tenant: Certificate, request: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res>,
): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const started = performance.now();
    let tenant: Certificate | undefined;
    const answer = async () => {
      tenant = options.authenticate(call);
      return handle(tenant, call.request, call);
    };
    answer().then(
      (response) => {
        options.log.request(tenant, rpc, status.OK, started);
        callback(null, response);
      },
      (error) => {
        const serviceError = toServiceError(error);
        options.log.request(tenant, rpc, serviceError.code, started, serviceError.details);
        callback(serviceError);
      },
    );
  };
}

/**
 * Aborts when the call is over: grpc-js reports "cancelled" both when the
 * client goes away and once the answer and its status are queued to send.
 */
function callEnded(call: ServerUnaryCall<unknown, unknown>): AbortSignal {
  const ended = new AbortController();
  if (call.cancelled) ended.abort();
  else call.once("cancelled", () => ended.abort(new RpcError(status.CANCELLED, "the call was cancelled")));
  return ended.signal;
}

/** Snapshots from this size on are followed by a garbage collection. */
const LARGE_SNAPSHOT_BYTES = 8 * 1024 * 1024;

/**
 * A snapshot leaves garbage several times its size (read, encoded, framed),
 * and the collector, left to itself, lets a dozen of them pile up: a client
 * taking one 63 MiB snapshot after another took jobberd to 900 MB. Once a
 * large one has left, collect at once (a few milliseconds, against the
 * ~100 ms the snapshot itself took): the budget then bounds the garbage too.
 */
function collectLargeGarbage(snapshotBytes: number): void {
  if (snapshotBytes >= LARGE_SNAPSHOT_BYTES) Bun.gc(true);
}

export function createJobService(options: ServiceOptions): JobServiceHandle {
  const streams = new Map<ServerWritableStream<unknown, unknown>, () => void>();
  const streamsPerTenant = new TenantCounter("FollowJobLog streams", "tenant-streams", options.tenantStreams);
  const snapshots = new SnapshotBudget(
    SNAPSHOT_BUDGET_BYTES,
    MAX_LOG_SNAPSHOT_BYTES,
    SNAPSHOTS_WAITING_PER_TENANT,
  );
  // Followers of one job share the chunks they read (the library hands the
  // same bytes to each): one message per chunk, so it is encoded once too.
  const messages = new WeakMap<Uint8Array, FollowJobLogResponse>();
  const messageFor = (data: Uint8Array) => {
    let message = messages.get(data);
    if (!message) {
      message = create(FollowJobLogResponseSchema, { data });
      messages.set(data, message);
    }
    return message;
  };

  const followJobLog: handleServerStreamingCall<FollowJobLogRequest, FollowJobLogResponse> = (call) => {
    const started = performance.now();
    let tenant: Certificate | undefined;
    let chunks: AsyncIterableIterator<Uint8Array> | undefined;
    let ending: { code: status; details: string } | undefined;
    let leaveQuota: (() => void) | undefined;
    const release = () => void chunks?.return?.();
    const stream = async () => {
      tenant = options.authenticate(call);
      // Checked before the job is looked up: a bad offset is INVALID_ARGUMENT whether or not the job exists.
      const offset = checkLogOffset(call.request.offset);
      leaveQuota = streamsPerTenant.enter(tenant.hash());
      const job = await tenant.getJob(jobId(call.request.jobId));
      chunks = job.follow(offset);
      // A client that cancels or disconnects releases the follower at once,
      // even while it waits for output.
      call.on("cancelled", release);
      // A cancel that came before the listener would otherwise go unnoticed.
      if (call.cancelled) release();
      const shutdown = new AbortController();
      streams.set(call, () => {
        ending = {
          code: status.UNAVAILABLE,
          details: "jobberd is shutting down; follow again from your offset",
        };
        shutdown.abort();
        release();
      });
      // Backpressure: a slow reader holds the follower (and one window of output), not the daemon's memory.
      const window = new SendWindow(call, FOLLOW_WINDOW_BYTES, shutdown.signal);
      for await (const data of chunks) {
        if (!(await window.send(messageFor(data), data.length))) return;
      }
    };
    stream()
      // Let go first (follower, quota), then answer: a client that sees the end may open the next stream at once.
      .finally(() => {
        call.off("cancelled", release);
        streams.delete(call);
        leaveQuota?.();
        release();
      })
      .then(
        () => {
          if (call.cancelled) {
            options.log.request(tenant, "FollowJobLog", status.CANCELLED, started);
          } else if (ending) {
            options.log.request(tenant, "FollowJobLog", ending.code, started, ending.details);
            call.emit("error", ending);
          } else {
            options.log.request(tenant, "FollowJobLog", status.OK, started);
            call.end();
          }
        },
        (error) => {
          const serviceError = toServiceError(error);
          options.log.request(tenant, "FollowJobLog", serviceError.code, started, serviceError.details);
          if (!call.cancelled) call.emit("error", serviceError);
        },
      );
  };

  const implementation: JobServiceImplementation = {
    startJob: unary(options, "StartJob", async (tenant, request: StartJobRequest) => {
      const job = tenant.newJob(argvFromRequest(request), limitsFromMessage(request.limits), {
        env: request.env,
        workdir: request.workdir,
      });
      const info = await job.start();
      options.onJobStarted?.(tenant, info);
      return create(StartJobResponseSchema, { job: jobMessage(info) });
    }),
    getJobs: unary(options, "GetJobs", async (tenant) => {
      const jobs = await Promise.all((await tenant.getJobs()).map((job) => job.info()));
      return create(GetJobsResponseSchema, { jobs: jobs.map(jobMessage) });
    }),
    getJob: unary(options, "GetJob", async (tenant, request: GetJobRequest) => {
      const job = await tenant.getJob(jobId(request.jobId));
      return create(GetJobResponseSchema, { job: jobMessage(await job.info()) });
    }),
    getJobLog: unary(options, "GetJobLog", async (tenant, request: GetJobLogRequest, call) => {
      const job = await tenant.getJob(jobId(request.jobId));
      const size = await job.logSize();
      if (size > MAX_LOG_SNAPSHOT_BYTES) {
        // The size lets a client stream exactly this snapshot with FollowJobLog (jb log does).
        throw new RpcError(
          status.FAILED_PRECONDITION,
          `the log of job ${job.id} is ${size} bytes, more than one message carries; stream it with FollowJobLog`,
          "LOG_TOO_LARGE",
          { [LOG_BYTES_KEY]: String(size) },
        );
      }
      // The snapshot's bytes are held until the client has read the answer (or gone).
      const ended = callEnded(call);
      const release = await snapshots.reserve(tenant.hash(), size, ended);
      const releaseWhenDelivered = () =>
        void whenDelivered(call).then(() => {
          release();
          collectLargeGarbage(size);
        });
      ended.addEventListener("abort", releaseWhenDelivered, { once: true });
      if (ended.aborted) releaseWhenDelivered();
      try {
        // The log as it was when its size was taken: a running job's later output is not reserved for.
        return create(GetJobLogResponseSchema, { log: await job.readLog(size) });
      } catch (error) {
        release();
        throw error;
      }
    }),
    followJobLog,
    stopJob: unary(options, "StopJob", async (tenant, request: StopJobRequest) => {
      const job = await tenant.getJob(jobId(request.jobId));
      return create(StopJobResponseSchema, { job: jobMessage(await job.stop()) });
    }),
    removeJob: unary(options, "RemoveJob", async (tenant, request: RemoveJobRequest) => {
      await (await tenant.getJob(jobId(request.jobId))).remove();
      return create(RemoveJobResponseSchema, {});
    }),
  };

  return {
    implementation,
    endStreams() {
      for (const end of streams.values()) end();
    },
    get openStreams() {
      return streams.size;
    },
  };
}
