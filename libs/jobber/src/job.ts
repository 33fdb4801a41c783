import { statSync } from "node:fs";
import { open, readFile, stat } from "node:fs/promises";
import { errnoCode, JobberError } from "./errors";
import type { ResolvedLimits } from "./limits";
import { LogFollower } from "./log-follower";
import type { JobStatus } from "./status";
import type { JobRecord } from "./store";
import type { LiveJob } from "./supervisor";

/** What the library needs from its runtime to run one job; implemented by JobRuntime. */
export interface JobHost {
  launch(record: JobRecord): Promise<void>;
  live(id: number): LiveJob | undefined;
  finalStatus(record: JobRecord): JobStatus | undefined;
  logPath(record: JobRecord): string;
  /** Deletes a finished job's directory and log. */
  remove(record: JobRecord): void;
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
  /** The log reached its cap (limits.logBytes): output past it was dropped. */
  logTruncated: boolean;
}

/** One job of one tenant. Its runtime and record are private fields (#): nothing outside reaches them. */
export class Job {
  readonly #host: JobHost;
  readonly #record: JobRecord;
  #started: boolean;

  constructor(host: JobHost, record: JobRecord, started: boolean) {
    this.#host = host;
    this.#record = record;
    this.#started = started;
  }

  get id(): number {
    return this.#record.id;
  }

  /** Launches the job in its cgroup and namespaces. */
  async start(): Promise<JobInfo> {
    if (this.#started) throw new JobberError("FAILED_PRECONDITION", `job ${this.id} was already started`);
    this.#started = true;
    await this.#host.launch(this.#record);
    return this.info();
  }

  async status(): Promise<JobStatus> {
    this.requireStarted();
    return this.#host.finalStatus(this.#record) ?? { state: "running" };
  }

  async info(): Promise<JobInfo> {
    const { id, argv, command, createdAt, limits } = this.#record;
    const status = await this.status();
    return {
      id,
      argv,
      command,
      createdAt,
      limits,
      status,
      logTruncated: logReachedCap(this.#host.logPath(this.#record), limits),
    };
  }

  /** The whole log so far, or its first `length` bytes. */
  async readLog(length?: number): Promise<Uint8Array> {
    this.requireStarted();
    const path = this.#host.logPath(this.#record);
    if (length === undefined) return this.whileLogExists(() => readFile(path));
    return this.whileLogExists(async () => {
      await using file = await open(path, "r");
      const buffer = Buffer.allocUnsafe(length);
      let filled = 0;
      while (filled < length) {
        const { bytesRead } = await file.read(buffer, filled, length - filled, filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      return buffer.subarray(0, filled);
    });
  }

  /** How many bytes the job has written so far. */
  async logSize(): Promise<number> {
    this.requireStarted();
    return this.whileLogExists(async () => (await stat(this.#host.logPath(this.#record))).size);
  }

  /** Deletes the finished job: its directory and log. Followers reading it still get the whole log. */
  async remove(): Promise<void> {
    this.requireStarted();
    if (this.#host.live(this.id)) {
      throw new JobberError(
        "FAILED_PRECONDITION",
        `job ${this.id} is running: stop it first (only a finished job can be removed)`,
      );
    }
    try {
      this.#host.remove(this.#record);
    } catch (error) {
      // A concurrent removal got there first.
      if (errnoCode(error) === "ENOENT") throw this.gone();
      throw error;
    }
  }

  /** A job removed while this handle was held is not found, like any unknown one. */
  private async whileLogExists<T>(read: () => Promise<T> | T): Promise<T> {
    try {
      return await read();
    } catch (error) {
      if (errnoCode(error) === "ENOENT") throw this.gone();
      throw error;
    }
  }

  private gone(): JobberError {
    return new JobberError("NOT_FOUND", `job ${this.id} not found`);
  }

  /**
   * The log as it is written, from `offset`, until the job has ended and all
   * of it was read. Stop iterating (or call `return()`) to let go early.
   */
  follow(offset = 0): AsyncIterableIterator<Uint8Array> {
    this.requireStarted();
    checkLogOffset(offset);
    const live = this.#host.live(this.id);
    try {
      return new LogFollower(this.#host.logPath(this.#record), offset, live?.logSignal);
    } catch (error) {
      if (errnoCode(error) === "ENOENT") throw this.gone();
      throw error;
    }
  }

  /** SIGTERM, a grace period, then SIGKILL to the whole cgroup; resolves when the job is over. */
  async stop(graceMs = this.#host.stopGraceMs): Promise<JobInfo> {
    this.requireStarted();
    const live = this.#host.live(this.id);
    if (!live) {
      const status = await this.status();
      throw new JobberError(
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
    return (await this.#host.live(this.id)?.ended) ?? this.status();
  }

  private requireStarted(): void {
    if (!this.#started) throw new JobberError("FAILED_PRECONDITION", `job ${this.id} has not been started`);
  }
}

/** A log offset as `follow` takes it: a whole number ≥ 0 (a wire's bigint too, checked before it is narrowed). */
export function checkLogOffset(offset: number | bigint): number {
  const narrowed = Number(offset);
  if (!Number.isSafeInteger(narrowed) || narrowed < 0 || BigInt(narrowed) !== BigInt(offset)) {
    throw new JobberError("INVALID_ARGUMENT", `offset must be a whole number ≥ 0, got ${offset}`);
  }
  return narrowed;
}

/**
 * The kernel stops a log at exactly its cap (writes past it fail), so a log
 * of that size is one whose output was cut. (A job that wrote exactly that
 * many bytes and no more is counted as cut too: nothing tells them apart.)
 */
export function logReachedCap(logPath: string, limits: ResolvedLimits): boolean {
  // Jobs recorded before logs had a cap have no logBytes.
  const cap = limits.logBytes ?? 0;
  if (cap <= 0) return false;
  try {
    return statSync(logPath).size >= cap;
  } catch {
    return false; // removed meanwhile
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
