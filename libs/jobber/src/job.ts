import { readFile, stat } from "node:fs/promises";
import { JobError } from "./errors";
import type { ResolvedLimits } from "./limits";
import { LogFollower } from "./log-follower";
import type { JobStatus } from "./status";
import type { JobRecord } from "./store";
import type { LiveJob } from "./supervisor";

/** What the library needs from its runtime to run one job; implemented by Jobber. */
export interface JobHost {
  launch(record: JobRecord): Promise<void>;
  live(id: number): LiveJob | undefined;
  finalStatus(record: JobRecord): JobStatus | undefined;
  logPath(record: JobRecord): string;
  stopGraceMs: number;
}

/** A snapshot of a job for callers: what it runs, with which limits, and how it is doing. */
export interface JobInfo {
  id: number;
  argv: string[];
  command: string;
  createdAt: string;
  limits: ResolvedLimits;
  status: JobStatus;
}

export class Job {
  constructor(
    private readonly host: JobHost,
    private readonly record: JobRecord,
    private started: boolean,
  ) {}

  get id(): number {
    return this.record.id;
  }

  /** Launches the job in its cgroup and namespaces. */
  async start(): Promise<JobInfo> {
    if (this.started) throw new JobError("FAILED_PRECONDITION", `job ${this.id} was already started`);
    this.started = true;
    await this.host.launch(this.record);
    return this.info();
  }

  async status(): Promise<JobStatus> {
    this.requireStarted();
    return this.host.finalStatus(this.record) ?? { state: "running" };
  }

  async info(): Promise<JobInfo> {
    const { id, argv, command, createdAt, limits } = this.record;
    return { id, argv, command, createdAt, limits, status: await this.status() };
  }

  /** The whole log so far. */
  async readLog(): Promise<Uint8Array> {
    this.requireStarted();
    return readFile(this.host.logPath(this.record));
  }

  /** How many bytes the job has written so far. */
  async logSize(): Promise<number> {
    this.requireStarted();
    return (await stat(this.host.logPath(this.record))).size;
  }

  /**
   * The log as it is written, from `offset`, until the job has ended and all
   * of it was read. Stop iterating (or call `return()`) to let go early.
   */
  follow(offset = 0): AsyncIterableIterator<Uint8Array> {
    this.requireStarted();
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new JobError("INVALID_ARGUMENT", `offset must be a whole number ≥ 0, got ${offset}`);
    }
    return new LogFollower(this.host.logPath(this.record), offset, this.host.live(this.id)?.logSignal);
  }

  /** SIGTERM, a grace period, then SIGKILL to the whole cgroup; resolves when the job is over. */
  async stop(graceMs = this.host.stopGraceMs): Promise<JobInfo> {
    this.requireStarted();
    const live = this.host.live(this.id);
    if (!live) {
      const status = await this.status();
      throw new JobError(
        "FAILED_PRECONDITION",
        `job ${this.id} has already finished (${describeStatus(status)})`,
      );
    }
    await live.stop(graceMs);
    return this.info();
  }

  /** Resolves with the final status once the job has ended. */
  async finished(): Promise<JobStatus> {
    this.requireStarted();
    return (await this.host.live(this.id)?.ended) ?? this.status();
  }

  private requireStarted(): void {
    if (!this.started) throw new JobError("FAILED_PRECONDITION", `job ${this.id} has not been started`);
  }
}

/** The status in a few words, as a person would say it. */
export function describeStatus(status: JobStatus): string {
  switch (status.state) {
    case "running":
      return "running";
    case "exited":
      return `exited with code ${status.exitCode}`;
    case "stopped":
      return "stopped";
    case "killed":
      return `killed by ${status.signal}`;
    case "oom_killed":
      return "killed for running out of memory";
    case "failed":
      return `failed to start: ${status.reason}`;
    case "timed_out":
      return "stopped at its timeout";
  }
}
