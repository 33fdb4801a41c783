// Library values ⇄ API messages.
import { create } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import { type JobInfo, type JobState, type Limits, splitCommandLine } from "@jobber/jobber";
import {
  type Job,
  JobSchema,
  JobStatus,
  type Limits as LimitsMessage,
  LimitsSchema,
  type StartJobRequest,
} from "@jobber/proto";
import { RpcError } from "./status-codes";

const JOB_STATUS: Record<JobState, JobStatus> = {
  running: JobStatus.RUNNING,
  exited: JobStatus.EXITED,
  stopped: JobStatus.STOPPED,
  killed: JobStatus.KILLED,
  oom_killed: JobStatus.OOM_KILLED,
  failed: JobStatus.FAILED,
  timed_out: JobStatus.TIMED_OUT,
};

export function jobMessage(info: JobInfo): Job {
  const { status: jobStatus, limits } = info;
  return create(JobSchema, {
    id: BigInt(info.id),
    command: info.command,
    args: info.argv,
    createdAt: info.createdAt,
    status: JOB_STATUS[jobStatus.state],
    finished: jobStatus.state !== "running",
    exitCode: jobStatus.exitCode ?? 0,
    signal: jobStatus.signal ?? "",
    finishedAt: jobStatus.finishedAt ?? "",
    failureReason: jobStatus.reason ?? "",
    logTruncated: info.logTruncated,
    limits: create(LimitsSchema, {
      cpus: limits.cpus,
      memoryBytes: BigInt(limits.memoryBytes),
      ioReadBps: BigInt(limits.ioReadBps),
      ioWriteBps: BigInt(limits.ioWriteBps),
      pidsMax: BigInt(limits.pidsMax),
      // Absent from jobs recorded before these limits existed.
      logBytes: BigInt(limits.logBytes ?? 0),
      timeoutSeconds: limits.timeoutSeconds ?? 0,
    }),
  });
}

function safeNumber(name: string, value: bigint): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < -BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new RpcError(status.INVALID_ARGUMENT, `${name} is out of range: ${value}`);
  }
  return Number(value);
}

export function limitsFromMessage(limits: LimitsMessage | undefined): Limits {
  if (!limits) return {};
  return {
    cpus: limits.cpus,
    memoryBytes: safeNumber("limits.memory_bytes", limits.memoryBytes),
    ioReadBps: safeNumber("limits.io_read_bps", limits.ioReadBps),
    ioWriteBps: safeNumber("limits.io_write_bps", limits.ioWriteBps),
    pidsMax: safeNumber("limits.pids_max", limits.pidsMax),
    logBytes: safeNumber("limits.log_bytes", limits.logBytes),
    timeoutSeconds: limits.timeoutSeconds,
  };
}

/**
 * `args` wins when set; a bare `command` is split by POSIX quoting rules, with
 * no shell. Neither set is an empty argv, which the library refuses.
 */
export function argvFromRequest(request: StartJobRequest): string[] {
  return request.args.length > 0 ? request.args : splitCommandLine(request.command);
}

export function jobId(value: bigint): number {
  // Ids are positive; anything else cannot name a job.
  return value > 0n && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : 0;
}
