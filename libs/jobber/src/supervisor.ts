// Watches running jobs and does the bookkeeping when one ends: reap, decide
// its status, write it down, remove the cgroup, wake the followers.
import { closeSync } from "node:fs";
import { constants } from "node:os";
import type { JobCgroup } from "./cgroup";
import { reap, signalPidfd } from "./launch/launch";
import { LogSignal } from "./log-follower";
import { decideStatus, type JobStatus, parseExitRecord } from "./status";
import type { JobRecord, JobStore } from "./store";
import { type FileWatch, watchFile } from "./watch";

/** setTimeout's longest delay; a longer timeout is waited for in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface SupervisorOptions {
  /** SIGTERM to SIGKILL when a job's timeout stops it. */
  stopGraceMs?: number;
  /** After a job's status is recorded; must not throw (errors are reported through warn). */
  onEnded?: (record: JobRecord, status: JobStatus) => void;
}

export class LiveJob {
  readonly logSignal: LogSignal;
  readonly ended: Promise<JobStatus>;
  private resolveEnded!: (status: JobStatus) => void;
  private eventsWatch: FileWatch | undefined;
  private finishing = false;
  private stopping: Promise<JobStatus> | undefined;
  private stopRequested = false;
  private timedOut = false;
  private timeoutTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly store: JobStore,
    readonly record: JobRecord,
    private readonly cgroup: JobCgroup,
    /** A pidfd of the job's init; undefined when it could not be opened (a re-adopted job whose init is gone). */
    private pidfd: number | undefined,
    private readonly onDone: (job: LiveJob, status: JobStatus) => void,
    private readonly warn: (message: string) => void,
    private readonly stopGraceMs = 5000,
  ) {
    this.logSignal = new LogSignal(store.logPath(record.tenant, record.id));
    this.ended = new Promise((resolve) => {
      this.resolveEnded = resolve;
    });
  }

  /** Starts watching `cgroup.events`; the job may already be over. */
  watch(): void {
    // A cgroup that is gone (a reboot, a job whose launch was cut short) has
    // nothing to watch: finish the bookkeeping at once.
    if (!this.cgroup.populated()) {
      void this.finish();
      return;
    }
    this.eventsWatch = watchFile(this.cgroup.eventsPath, () => this.checkPopulated());
    // The job may have emptied its cgroup before the watch began.
    this.checkPopulated();
    if (!this.finishing) this.armTimeout();
  }

  /**
   * A job with a timeout is stopped, as by a user, once it has run that long
   * since it was created: an adopted job keeps its original deadline, and one
   * whose deadline passed while no daemon watched is stopped at once.
   */
  private armTimeout(): void {
    const seconds = this.record.limits.timeoutSeconds ?? 0;
    if (!(seconds > 0)) return;
    const deadline = Date.parse(this.record.createdAt) + seconds * 1000;
    const wait = () => {
      const left = deadline - Date.now();
      if (left > 0) {
        this.timeoutTimer = setTimeout(wait, Math.min(left, MAX_TIMER_MS));
        return;
      }
      this.timeoutTimer = undefined;
      // A stop already under way (a user's) decides how the job is reported.
      if (this.finishing || this.stopping) return;
      this.timedOut = true;
      this.stop(this.stopGraceMs, "timeout").catch((error) =>
        this.warn(`job ${this.record.id}: cannot stop it at its timeout: ${error}`),
      );
    };
    wait();
  }

  private clearTimeout(): void {
    if (this.timeoutTimer !== undefined) clearTimeout(this.timeoutTimer);
    this.timeoutTimer = undefined;
  }

  /** SIGTERM to the command (init forwards it), then SIGKILL to the whole cgroup after `graceMs`. */
  stop(graceMs: number, cause: "user" | "timeout" = "user"): Promise<JobStatus> {
    if (!this.stopping) {
      this.stopping = this.terminate(graceMs, cause);
      // A stop that failed may be asked for again.
      this.stopping.catch(() => {
        this.stopping = undefined;
      });
    }
    return this.stopping;
  }

  /** Lets go of the job without ending it (daemon shutdown): it keeps running. */
  release(): void {
    this.clearTimeout();
    this.eventsWatch?.close();
    this.logSignal.end();
    this.closePidfd();
  }

  private async terminate(graceMs: number, cause: "user" | "timeout"): Promise<JobStatus> {
    if (cause === "user") this.stopRequested = true;
    try {
      if (cause === "user") this.store.markStopRequested(this.record.tenant, this.record.id);
      else this.store.markTimedOut(this.record.tenant, this.record.id);
    } catch (error) {
      // The status will still say "stopped" (kept in memory); only a daemon
      // restart before the job ends would lose that.
      this.warn(`job ${this.record.id}: cannot record the stop request: ${error}`);
    }
    const signalled = this.pidfd !== undefined && signalPidfd(this.pidfd, constants.signals.SIGTERM);
    if (!signalled) this.cgroup.kill();
    const timer = setTimeout(() => this.cgroup.kill(), graceMs);
    try {
      return await this.ended;
    } finally {
      clearTimeout(timer);
    }
  }

  private checkPopulated(): void {
    if (!this.finishing && !this.cgroup.populated()) void this.finish();
  }

  /**
   * The job is over: reap init, decide and record its status, remove the
   * cgroup, wake everyone. Whatever fails here (a full disk) is reported and
   * the job still ends for its waiters: nothing here may take the daemon down.
   */
  private async finish(): Promise<void> {
    this.finishing = true;
    this.clearTimeout();
    this.eventsWatch?.close();
    const { tenant, id } = this.record;
    this.reapInit();
    let status: JobStatus = { state: "killed", finishedAt: new Date().toISOString() };
    try {
      status = decideStatus({
        exit: parseExitRecord(this.store.readExit(tenant, id)),
        stopRequested: this.stopRequested || this.store.stopRequested(tenant, id),
        timedOut: this.timedOut || this.store.timedOut(tenant, id),
        oomKills: this.cgroup.oomKills(),
        finishedAt: status.finishedAt as string,
      });
      this.store.writeFinalStatus(tenant, id, status);
    } catch (error) {
      this.warn(`job ${id}: cannot record how it ended (${status.state}): ${error}`);
    }
    try {
      await this.cgroup.remove();
    } catch (error) {
      this.warn(`job ${id}: cannot remove cgroup ${this.cgroup.name}: ${error}`);
    }
    this.logSignal.end();
    this.onDone(this, status);
    this.resolveEnded(status);
  }

  /**
   * Collects init's zombie if it is ours. The cgroup empties as init's last
   * task leaves it, a moment before init is reapable, so a first attempt may
   * be early; init is certainly dying, so try again shortly.
   */
  private reapInit(attempt = 0): void {
    const pidfd = this.pidfd;
    if (pidfd === undefined) return;
    let reaped = true;
    try {
      reaped = reap(pidfd);
    } catch {
      // Not our child (re-adopted): its new parent reaps it.
    }
    if (reaped || attempt >= 100) {
      this.closePidfd();
      return;
    }
    setTimeout(() => this.reapInit(attempt + 1), Math.min(2 ** attempt, 50));
  }

  private closePidfd(): void {
    if (this.pidfd !== undefined) closeSync(this.pidfd);
    this.pidfd = undefined;
  }
}

/** The running jobs of this process, by id. */
export class Supervisor {
  private readonly live = new Map<number, LiveJob>();

  constructor(
    private readonly store: JobStore,
    private readonly warn: (message: string) => void,
    private readonly options: SupervisorOptions = {},
  ) {}

  track(record: JobRecord, cgroup: JobCgroup, pidfd: number | undefined): LiveJob {
    const onDone = (done: LiveJob, status: JobStatus) => {
      this.live.delete(done.record.id);
      try {
        this.options.onEnded?.(done.record, status);
      } catch (error) {
        this.warn(`job ${done.record.id}: the end-of-job listener failed: ${error}`);
      }
    };
    const job = new LiveJob(this.store, record, cgroup, pidfd, onDone, this.warn, this.options.stopGraceMs);
    // Watch first: a job whose watch cannot be set up is not tracked at all.
    // (If it is already over, its bookkeeping ends asynchronously, after the set.)
    job.watch();
    this.live.set(record.id, job);
    return job;
  }

  get(id: number): LiveJob | undefined {
    return this.live.get(id);
  }

  get size(): number {
    return this.live.size;
  }

  /** Stops watching every job; the jobs keep running. */
  releaseAll(): void {
    for (const job of this.live.values()) job.release();
    this.live.clear();
  }
}
