// jobber.v1.JobService on top of the job library. Each handler authenticates
// the caller, maps the request to one library call and the answer (or the
// error, through status-codes.ts) back. Nothing here knows what a cgroup is.
import { create } from "@bufbuild/protobuf";
import {
  type handleServerStreamingCall,
  type handleUnaryCall,
  type ServerWritableStream,
  status,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
// grpc-js does not re-export the type every server call shares; a type-only import is erased at run time.
import type { ServerSurfaceCall } from "@grpc/grpc-js/build/src/server-call";
import type { Certificate, JobInfo } from "@jobber/jobber";
import {
  type FollowJobLogRequest,
  type FollowJobLogResponse,
  FollowJobLogResponseSchema,
  type GetJobLogRequest,
  GetJobLogResponseSchema,
  type GetJobRequest,
  GetJobResponseSchema,
  GetJobsResponseSchema,
  type StartJobRequest,
  StartJobResponseSchema,
  type StopJobRequest,
  StopJobResponseSchema,
} from "@jobber/proto";
import { argvFromRequest, jobId, jobMessage, limitsFromMessage } from "./messages";
import type { RequestLog } from "./request-log";
import { RpcError, toServiceError } from "./status-codes";

/** GetJobLog answers in one message; past this size the log must be streamed. */
export const MAX_LOG_SNAPSHOT_BYTES = 64 * 1024 * 1024;

export interface ServiceOptions {
  /** The caller's tenant; throws RpcError(UNAUTHENTICATED) with the reason. */
  authenticate(call: ServerSurfaceCall): Certificate;
  log: RequestLog;
  /** A job has started (for the daemon's log and metrics). */
  onJobStarted?(tenant: Certificate, job: JobInfo): void;
}

export interface JobServiceHandle {
  implementation: UntypedServiceImplementation;
  /** Ends every open FollowJobLog stream with UNAVAILABLE (daemon shutdown). */
  endStreams(reason: string): void;
  /** FollowJobLog streams open now. */
  readonly openStreams: number;
}

function unary<Req, Res>(
  options: ServiceOptions,
  rpc: string,
  handle: (tenant: Certificate, request: Req) => Promise<Res>,
): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const started = performance.now();
    let tenant: Certificate | undefined;
    const answer = async () => {
      tenant = options.authenticate(call);
      return handle(tenant, call.request);
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

/** Resolves when the stream can take more, when the client is gone, or at shutdown. */
function writable(call: ServerWritableStream<unknown, unknown>, shutdown: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      call.off("drain", done);
      call.off("cancelled", done);
      call.off("close", done);
      shutdown.removeEventListener("abort", done);
      resolve();
    };
    call.on("drain", done);
    call.on("cancelled", done);
    call.on("close", done);
    shutdown.addEventListener("abort", done, { once: true });
  });
}

export function createJobService(options: ServiceOptions): JobServiceHandle {
  const streams = new Map<ServerWritableStream<unknown, unknown>, () => void>();
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
    const release = () => void chunks?.return?.();
    const stream = async () => {
      tenant = options.authenticate(call);
      if (call.request.offset < 0n) throw new RpcError(status.INVALID_ARGUMENT, "offset must be ≥ 0");
      const job = await tenant.getJob(jobId(call.request.jobId));
      chunks = job.follow(Number(call.request.offset));
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
      for await (const data of chunks) {
        if (call.cancelled) return;
        // Backpressure: a slow reader holds the follower, not the daemon's memory.
        if (!call.write(messageFor(data))) await writable(call, shutdown.signal);
      }
    };
    stream()
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
      )
      .finally(() => {
        call.off("cancelled", release);
        streams.delete(call);
        release();
      });
  };

  const implementation = {
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
    getJobLog: unary(options, "GetJobLog", async (tenant, request: GetJobLogRequest) => {
      const job = await tenant.getJob(jobId(request.jobId));
      const size = await job.logSize();
      if (size > MAX_LOG_SNAPSHOT_BYTES) {
        // The size lets a client stream exactly this snapshot with FollowJobLog (jb log does).
        throw new RpcError(
          status.FAILED_PRECONDITION,
          `the log of job ${job.id} is ${size} bytes, more than one message carries; stream it with FollowJobLog`,
          "LOG_TOO_LARGE",
          { "jobber-log-bytes": String(size) },
        );
      }
      return create(GetJobLogResponseSchema, { log: await job.readLog() });
    }),
    followJobLog,
    stopJob: unary(options, "StopJob", async (tenant, request: StopJobRequest) => {
      const job = await tenant.getJob(jobId(request.jobId));
      return create(StopJobResponseSchema, { job: jobMessage(await job.stop()) });
    }),
  };

  return {
    implementation: implementation as unknown as UntypedServiceImplementation,
    endStreams() {
      for (const end of streams.values()) end();
    },
    get openStreams() {
      return streams.size;
    },
  };
}
