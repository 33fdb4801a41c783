// Watches running jobs and does the bookkeeping when one ends: decide its
// status, write it down, wake the followers, then remove the cgroup.
import { closeSync } from "node:fs";
import { constants } from "node:os";
import type { JobCgroup } from "./cgroup";
import { type Launched, signalPidfd } from "./launch/launch";
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
  /** Resolves with the final status once the job has ended. */
  readonly ended: Promise<JobStatus>;
  /** Resolves once the job's cgroup is gone too (after `ended`). */
  readonly removed: Promise<void>;
  private resolveEnded!: (status: JobStatus) => void;
  private resolveRemoved!: () => void;
  private eventsWatch: FileWatch | undefined;
  private over = false;
  private removing = false;
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
    /** The launcher's word that init has exited; absent for a re-adopted job. */
    private readonly launched: Pick<Launched, "exited" | "release"> | undefined,
    private readonly onDone: (job: LiveJob, status: JobStatus) => void,
    private readonly warn: (message: string) => void,
    private readonly stopGraceMs = 5000,
  ) {
    this.logSignal = new LogSignal(store.logPath(record.tenant, record.id));
    this.ended = new Promise((resolve) => {
      this.resolveEnded = resolve;
    });
    this.removed = new Promise((resolve) => {
      this.resolveRemoved = resolve;
    });
  }

  /**
   * Starts watching for the job's end: init's exit (the ready pipe's end of
   * file), which comes first, or else its cgroup emptying (a re-adopted
   * job). The job may already be over.
   */
  watch(): void {
    // A cgroup that is gone (a reboot, a job whose launch was cut short) has
    // nothing to watch: finish the bookkeeping at once.
    if (!this.cgroup.populated()) {
      void this.end();
      return;
    }
    this.eventsWatch = watchFile(this.cgroup.eventsPath, () => this.checkPopulated());
    // The job may have emptied its cgroup before the watch began.
    this.checkPopulated();
    void this.launched?.exited.then((exited) => {
      // An init that recorded the exit had killed and reaped everything else
      // first: nothing of the job can write any more. One killed before it
      // could (stop's SIGKILL, the OOM killer) leaves the rest to the
      // kernel, which takes them down with it: then the cgroup's emptying
      // is the end.
      if (!exited) return;
      const exit = this.readExit();
      if (exit !== undefined) void this.end(exit);
    });
    if (!this.over) this.armTimeout();
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
      if (this.over || this.stopping) return;
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
  release(): Promise<void> {
    this.clearTimeout();
    this.eventsWatch?.close();
    this.launched?.release();
    this.logSignal.end();
    this.closePidfd();
    // The ready pipe is closed once its pending read is cancelled.
    return this.launched ? this.launched.exited.then(() => {}) : Promise.resolve();
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

  /** What init recorded in `<job>/exit`; undefined when nothing (yet), or unreadable. */
  private readExit(): string | undefined {
    try {
      return this.store.readExit(this.record.tenant, this.record.id);
    } catch {
      return undefined;
    }
  }

  private checkPopulated(): void {
    if (this.cgroup.populated()) return;
    if (this.over) void this.removeCgroup();
    else void this.end();
  }

  /**
   * The job is over: decide and record its status, wake everyone. Whatever
   * fails here (a full disk) is reported and the job still ends for its
   * waiters: nothing here may take the daemon down. The cgroup goes once
   * it is empty, which may be a little later: the kernel tears the job's
   * namespaces down after init has gone.
   */
  private async end(exit = this.readExit()): Promise<void> {
    if (this.over) return;
    this.over = true;
    this.clearTimeout();
    this.closePidfd();
    const { tenant, id } = this.record;
    let status: JobStatus = { state: "killed", finishedAt: new Date().toISOString() };
    try {
      // A stop or timeout of this daemon's is known here; one of a previous
      // daemon's (an adopted job) only from the marker it left.
      const adopted = this.launched === undefined;
      status = decideStatus({
        exit: parseExitRecord(exit),
        stopRequested: this.stopRequested || (adopted && this.store.stopRequested(tenant, id)),
        timedOut: this.timedOut || (adopted && this.store.timedOut(tenant, id)),
        oomKills: this.cgroup.oomKills(),
        finishedAt: status.finishedAt as string,
      });
      this.store.writeFinalStatus(tenant, id, status);
    } catch (error) {
      this.warn(`job ${id}: cannot record how it ended (${status.state}): ${error}`);
    }
    this.logSignal.end();
    this.onDone(this, status);
    this.resolveEnded(status);
    if (!this.cgroup.populated()) await this.removeCgroup();
  }

  private async removeCgroup(): Promise<void> {
    if (this.removing) return;
    this.removing = true;
    this.eventsWatch?.close();
    try {
      await this.cgroup.remove();
    } catch (error) {
      this.warn(`job ${this.record.id}: cannot remove cgroup ${this.cgroup.name}: ${error}`);
    }
    this.resolveRemoved();
  }

  private closePidfd(): void {
    if (this.pidfd !== undefined) closeSync(this.pidfd);
    this.pidfd = undefined;
  }
}

/** The running jobs of this process, by id. */
export class Supervisor {
  private readonly live = new Map<number, LiveJob>();
  /** Running jobs per tenant, for the tenant's quota. */
  private readonly perTenant = new Map<string, number>();
  /** Ended jobs whose cgroups are still to go. */
  private readonly cleaning = new Set<Promise<void>>();

  constructor(
    private readonly store: JobStore,
    private readonly warn: (message: string) => void,
    private readonly options: SupervisorOptions = {},
  ) {}

  track(
    record: JobRecord,
    cgroup: JobCgroup,
    pidfd: number | undefined,
    launched?: Pick<Launched, "exited" | "release">,
  ): LiveJob {
    const onDone = (done: LiveJob, status: JobStatus) => {
      if (this.live.delete(done.record.id)) this.count(done.record.tenant, -1);
      this.cleaning.add(done.removed);
      void done.removed.then(() => this.cleaning.delete(done.removed));
      try {
        this.options.onEnded?.(done.record, status);
      } catch (error) {
        this.warn(`job ${done.record.id}: the end-of-job listener failed: ${error}`);
      }
    };
    const job = new LiveJob(
      this.store,
      record,
      cgroup,
      pidfd,
      launched,
      onDone,
      this.warn,
      this.options.stopGraceMs,
    );
    // Tracked before it is watched: a job already over when the watch begins
    // ends right there, and its end must find it tracked (or it would be
    // counted as running for good). A job whose watch cannot be set up is
    // not tracked at all.
    this.live.set(record.id, job);
    this.count(record.tenant, +1);
    try {
      job.watch();
    } catch (error) {
      if (this.live.delete(record.id)) this.count(record.tenant, -1);
      throw error;
    }
    return job;
  }

  /** How many of the tenant's jobs are running. */
  runningFor(tenant: string): number {
    return this.perTenant.get(tenant) ?? 0;
  }

  private count(tenant: string, change: number): void {
    const running = (this.perTenant.get(tenant) ?? 0) + change;
    if (running > 0) this.perTenant.set(tenant, running);
    else this.perTenant.delete(tenant);
  }

  get(id: number): LiveJob | undefined {
    return this.live.get(id);
  }

  get size(): number {
    return this.live.size;
  }

  /**
   * Removes a cgroup once it is empty: one left over from a job that ended
   * while its daemon was shutting down, found at the next start.
   */
  removeWhenEmpty(cgroup: JobCgroup): void {
    const removed = new Promise<void>((resolve) => {
      let watch: FileWatch | undefined;
      let removing = false;
      const check = () => {
        if (removing || cgroup.populated()) return;
        removing = true;
        watch?.close();
        cgroup.remove().then(resolve, (error) => {
          this.warn(`cannot remove cgroup ${cgroup.name}: ${error}`);
          resolve();
        });
      };
      check();
      if (removing) return;
      try {
        watch = watchFile(cgroup.eventsPath, check);
      } catch {
        // Its v2 directory went meanwhile: nothing left to wait for.
      }
      check();
    });
    this.cleaning.add(removed);
    void removed.then(() => this.cleaning.delete(removed));
  }

  /** Resolves once the cgroups of every job ended so far are gone. */
  async cgroupsRemoved(): Promise<void> {
    while (this.cleaning.size > 0) await Promise.all(this.cleaning);
  }

  /** Stops watching every job; the jobs keep running. */
  async releaseAll(): Promise<void> {
    const released = [...this.live.values()].map((job) => job.release());
    this.live.clear();
    this.perTenant.clear();
    await Promise.all(released);
  }
}
