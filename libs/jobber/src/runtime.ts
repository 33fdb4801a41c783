// The library's runtime: one per state directory. It owns the store, the id
// allocator, the cgroup driver and the supervisor of running jobs. Internal:
// its methods take any tenant's name, so only tenant-bound handles
// (Certificate, Job) and the Jobber facade (jobber.ts) reach it.
import { closeSync, readFileSync, realpathSync } from "node:fs";
import { constants } from "node:os";
import type { TenantHost } from "./certificate";
import { blockDevicesOf, type CgroupDriver, detectCgroups, TenantPidsFullError } from "./cgroup";
import { joinCommandLine } from "./command-line";
import { checkFreeSpace, type MinFree } from "./disk-space";
import {
  checkEnvironment,
  checkWorkdir,
  type JobEnvironment,
  jobEnvironment,
  searchPathOf,
} from "./environment";
import { JobberError } from "./errors";
import { IDS_PER_TENANT, TenantIdRanges } from "./id-ranges";
import { IdAllocator } from "./ids";
import { Job, type JobHost, type JobInfo, logReachedCap } from "./job";
import {
  errnoName,
  LaunchError,
  Launcher,
  type LaunchOutcome,
  type LaunchSpec,
  openPidfd,
} from "./launch/launch";
import {
  type LimitPolicy,
  type Limits,
  limitPolicy,
  type MaxLimits,
  type ResolvedLimits,
  resolveLimits,
  type TenantQuotas,
  tenantQuotas,
} from "./limits";
import { ensurePrivateDir } from "./private-dir";
import { checkArgv } from "./resolve";
import { removeExpiredJobs, retentionPeriodMs } from "./retention";
import { DEFAULT_RUN_AS, JOB_RLIMITS, MASKED_DIRS, MASKED_FILES } from "./sandbox";
import type { JobStatus } from "./status";
import { type JobRecord, JobStore } from "./store";
import { Supervisor } from "./supervisor";
import { openWatcherCount } from "./watch";

/** What a Jobber uses for an option not given: the one place these defaults live. */
export const JOBBER_DEFAULTS = {
  cgroupRoot: "/sys/fs/cgroup",
  cgroupParent: "jobber",
  runAs: DEFAULT_RUN_AS,
  stopGraceMs: 5000,
  retentionMs: 0,
  minFree: { fraction: 0.05 } as MinFree,
} as const;

export interface JobberOptions {
  /** The daemon's home: `pool/` holds the client certificates. Hidden from jobs. */
  home: string;
  /** Where jobs live. Hidden from jobs. */
  stateDir: string;
  /** The cgroup filesystem; "/sys/fs/cgroup" unless testing. */
  cgroupRoot?: string;
  /** The cgroup under which each job gets its own; "jobber". */
  cgroupParent?: string;
  /** The user jobs run as, inside their user namespace; nobody (65534) by default. 0 is root there, nothing more. */
  runAs?: { uid: number; gid: number };
  /** Limits of a job that leaves them 0; DEFAULT_LIMITS for what is not given. */
  defaultLimits?: Partial<ResolvedLimits>;
  /** The most one job may ask for; the host's cores and memory, 32768 PIDs and 4 GiB of log unless given. */
  maxLimits?: Partial<MaxLimits>;
  /** Totals over one tenant's running jobs; 100 jobs, the host's cores and memory, a quarter of pid_max unless given. */
  tenantQuotas?: Partial<TenantQuotas>;
  /** Finished jobs older than this are removed, at start and at least hourly; 0 (the default) keeps them. */
  retentionMs?: number;
  /** New jobs are refused while the state directory's filesystem has less free; 5 % unless given. */
  minFree?: MinFree;
  /** Time between SIGTERM and SIGKILL when a job is stopped; 5 s. */
  stopGraceMs?: number;
  /** How long to wait for the launcher process to take or answer a start before replacing it; 10 s. */
  launcherTimeoutMs?: number;
  /** Problems that are not any caller's fault (a cgroup that would not go away). */
  warn?: (message: string) => void;
  /**
   * Called once for every job that ends while this Jobber watches it (adopted
   * ones too), after its status is recorded. For logs and metrics; it must not throw.
   */
  onJobEnded?: (ended: JobEnded) => void;
}

/** A job that has just ended: whose it was, and the job with its final status. */
export interface JobEnded {
  tenant: string;
  job: JobInfo;
}

export interface JobberStats {
  runningJobs: number;
  /** File watchers held for jobs and their followers. */
  watchers: number;
  /** Job cgroups that exist on the host. */
  cgroups: string[];
  /** The launcher process, once started. */
  launcherPid: number | undefined;
}

export class JobRuntime implements JobHost, TenantHost {
  readonly stopGraceMs: number;
  private readonly store: JobStore;
  private readonly ids: IdAllocator;
  private readonly cgroups: CgroupDriver;
  private readonly supervisor: Supervisor;
  private readonly runAs: { uid: number; gid: number };
  private readonly limitPolicy: LimitPolicy;
  private readonly tenantQuotas: TenantQuotas;
  private readonly minFree: MinFree;
  private readonly maskedPaths: string[];
  private readonly cgroupParent: string;
  private readonly ioLimitsAvailable: boolean;
  private retentionTimer: ReturnType<typeof setInterval> | undefined;
  private readonly idRanges: TenantIdRanges;
  private readonly launcher: Launcher;
  /** Set by close(): resolves once every fd held for a running job is closed. */
  private closing: Promise<void> | undefined;

  constructor(private readonly options: JobberOptions) {
    ensurePrivateDir(options.home, "home directory");
    // Configuration first: a bad one is refused before anything is touched.
    this.limitPolicy = limitPolicy(options.defaultLimits, options.maxLimits);
    this.tenantQuotas = tenantQuotas(options.tenantQuotas);
    this.minFree = options.minFree ?? JOBBER_DEFAULTS.minFree;
    this.store = new JobStore(options.stateDir);
    this.ids = new IdAllocator(this.store);
    this.cgroupParent = options.cgroupParent ?? JOBBER_DEFAULTS.cgroupParent;
    const ioDevices = blockDevicesOf([options.stateDir, "/"]);
    this.ioLimitsAvailable = ioDevices.length > 0;
    if (!this.ioLimitsAvailable) {
      options.warn?.("neither the state directory nor / is on a block device: jobs cannot get IO limits");
    }
    this.cgroups = detectCgroups(
      options.cgroupRoot ?? JOBBER_DEFAULTS.cgroupRoot,
      this.cgroupParent,
      ioDevices,
      this.tenantQuotas,
      options.warn ?? (() => {}),
    );
    this.runAs = options.runAs ?? JOBBER_DEFAULTS.runAs;
    if (!(this.runAs.uid < IDS_PER_TENANT && this.runAs.gid < IDS_PER_TENANT)) {
      throw new JobberError(
        "INVALID_ARGUMENT",
        `jobs cannot run as ${this.runAs.uid}:${this.runAs.gid}: their user namespaces have ids 0 to ${IDS_PER_TENANT - 1}`,
      );
    }
    this.idRanges = new TenantIdRanges(options.stateDir);
    this.stopGraceMs = options.stopGraceMs ?? JOBBER_DEFAULTS.stopGraceMs;
    this.supervisor = new Supervisor(this.store, options.warn ?? (() => {}), {
      stopGraceMs: this.stopGraceMs,
      onEnded:
        options.onJobEnded &&
        ((record, status) =>
          options.onJobEnded?.(endedEvent(record, status, this.store.logPath(record.tenant, record.id)))),
    });
    this.maskedPaths = [...MASKED_DIRS, realpathSync(options.home), realpathSync(options.stateDir)];
    this.store.finishRemovals();
    this.launcher = new Launcher(options.launcherTimeoutMs);
    // Before anything that would need undoing: a launcher that cannot be
    // built stops jobberd here, and the first job does not pay for it.
    this.launcher.start();
    this.adoptRunningJobs();
    this.startRetention(options.retentionMs ?? JOBBER_DEFAULTS.retentionMs);
  }

  get cgroupLayout(): CgroupDriver["layout"] {
    return this.cgroups.layout;
  }

  // ── TenantHost ────────────────────────────────────────────────────────

  jobIds(tenant: string): number[] {
    return this.store.ids(tenant);
  }

  job(tenant: string, id: number): Job | undefined {
    const record = this.store.read(tenant, id);
    return record && new Job(this, record, true);
  }

  newJob(tenant: string, argv: string[], limits: Limits, environment: JobEnvironment = {}): Job {
    checkArgv(argv);
    const env = checkEnvironment(environment.env ?? []);
    const workdir = checkWorkdir(environment.workdir || "/");
    const resolved = resolveLimits(limits, this.limitPolicy);
    if (!this.ioLimitsAvailable && (resolved.ioReadBps > 0 || resolved.ioWriteBps > 0)) {
      // Accepting them would promise a limit nothing enforces.
      throw new JobberError(
        "INVALID_ARGUMENT",
        "IO limits are not available on this host: no block device to throttle",
      );
    }
    const record: JobRecord = {
      id: this.ids.next(),
      tenant,
      argv: [...argv],
      command: joinCommandLine(argv),
      // Resolved by the launcher, in the job's own view and as its user.
      program: argv[0] as string,
      createdAt: new Date().toISOString(),
      limits: resolved,
      env,
      workdir,
    };
    return new Job(this, record, false);
  }

  // ── JobHost ───────────────────────────────────────────────────────────

  async launch(record: JobRecord): Promise<void> {
    const { tenant, id } = record;
    this.admit(tenant);
    this.store.create(record);
    let cgroup: ReturnType<CgroupDriver["create"]> | undefined;
    const fds: number[] = [];
    let launched: ReturnType<Launcher["launch"]>;
    try {
      const ids = this.idRanges.of(tenant);
      // The log first: a job that fails to launch still has one (empty) to read.
      const { logFd, jobDirFd } = this.store.openForLaunch(tenant, id);
      fds.push(logFd, jobDirFd);
      cgroup = this.cgroups.create(tenant, String(id), record.limits);
      const { cgroupFd, v1ProcsFds } = cgroup.openForLaunch();
      fds.push(cgroupFd, ...v1ProcsFds);
      const spec: LaunchSpec = {
        cgroupFd,
        cgroupV1ProcsFds: v1ProcsFds,
        logFd,
        jobDirFd,
        argv: record.argv,
        env: jobEnvironment(record.env ?? [], id),
        searchPath: searchPathOf(record.env ?? []),
        maskedDirs: this.maskedPaths,
        maskedFiles: MASKED_FILES,
        cwd: record.workdir ?? "/",
        hostname: `job-${id}`,
        uid: this.runAs.uid,
        gid: this.runAs.gid,
        hostIdBase: ids.hostBase,
        idCount: ids.count,
        logLimitBytes: record.limits.logBytes,
        rlimits: JOB_RLIMITS,
      };
      launched = this.launcher.launch(spec, () => {
        // A launcher that died mid-request may have started this job's init
        // already. Kill it and give up: cloning into a cgroup after
        // cgroup.kill gets the new process killed too on some kernels.
        if (cgroup?.populated()) {
          cgroup.kill();
          throw new JobberError("INTERNAL", `the launcher died while starting job ${id}; start it again`);
        }
      });
      // From here the job runs: the supervisor must own it, or it must die.
      try {
        this.supervisor.track(record, cgroup, launched.pidfd, launched);
      } catch (error) {
        cgroup.kill();
        closeSync(launched.pidfd);
        launched.release();
        throw error;
      }
      try {
        this.store.writePid(tenant, id, launched.pid);
      } catch (error) {
        // Only a restart needs it, to signal the job; stop then kills the cgroup.
        this.options.warn?.(`job ${id}: cannot record its pid: ${error}`);
      }
    } catch (error) {
      await cgroup?.remove().catch(() => {});
      // The pids controller refused init's clone (or would have): the tenant's
      // cgroup (or the host) is full. A refused start leaves no job behind.
      if (
        (error instanceof LaunchError && error.errno === constants.errno.EAGAIN) ||
        error instanceof TenantPidsFullError
      ) {
        this.store.remove(tenant, id);
        throw this.noProcessesLeft(id, error);
      }
      const reason = `launch failed: ${error instanceof Error ? error.message : error}`;
      this.store.writeFinalStatus(tenant, id, {
        state: "failed",
        reason,
        finishedAt: new Date().toISOString(),
      });
      throw new JobberError("INTERNAL", `cannot start job ${id}: ${reason}`, { cause: error });
    } finally {
      for (const fd of fds) closeSync(fd);
    }
    await this.settleLaunch(record, await launched.outcome);
  }

  /**
   * Init has said whether the command runs. A program or working directory
   * the job cannot reach is the caller's mistake: the start call fails and
   * the job is not kept. Any other failure is the job's: it ends as failed.
   */
  private async settleLaunch(record: JobRecord, outcome: LaunchOutcome | undefined): Promise<void> {
    if (outcome?.ok) return;
    const live = this.supervisor.get(record.id);
    // The job is over (init exits right after it reports): let its bookkeeping finish.
    await live?.ended;
    // Init could not fork the command: the tenant's processes filled up meanwhile.
    const pidsFull = outcome?.step === "fork" && outcome.errno === constants.errno.EAGAIN;
    const refusal = pidsFull ? this.noProcessesLeft(record.id) : outcome && launchRefusal(record, outcome);
    if (!refusal) return;
    this.store.remove(record.tenant, record.id);
    throw refusal;
  }

  private noProcessesLeft(id: number, cause?: unknown): JobberError {
    return new JobberError(
      "RESOURCE_EXHAUSTED",
      `cannot start job ${id}: your running jobs hold all the processes one tenant may have (tenant-pids = ${this.tenantQuotas.pidsMax}), or the host has none left`,
      { cause },
    );
  }

  live(id: number) {
    return this.supervisor.get(id);
  }

  finalStatus(record: JobRecord): JobStatus | undefined {
    return this.store.readFinalStatus(record.tenant, record.id);
  }

  logPath(record: JobRecord): string {
    return this.store.logPath(record.tenant, record.id);
  }

  remove(record: JobRecord): void {
    this.store.remove(record.tenant, record.id);
  }

  /**
   * Quotas a new job must fit in. Checked where the job is tracked, in the
   * same synchronous step, so concurrent starts cannot both slip under.
   */
  private admit(tenant: string): void {
    const running = this.supervisor.runningFor(tenant);
    if (this.tenantQuotas.jobs > 0 && running >= this.tenantQuotas.jobs) {
      throw new JobberError(
        "RESOURCE_EXHAUSTED",
        `${running} of your jobs are running, the most one tenant may run at once (tenant-jobs = ${this.tenantQuotas.jobs}); wait for one to end or stop one`,
      );
    }
    if ("fraction" in this.minFree ? this.minFree.fraction > 0 : this.minFree.bytes > 0) {
      checkFreeSpace(this.options.stateDir, this.minFree);
    }
  }

  // ── lifecycle ─────────────────────────────────────────────────────────

  stats(): JobberStats {
    return {
      runningJobs: this.supervisor.size,
      watchers: openWatcherCount(),
      cgroups: this.cgroups.list(),
      launcherPid: this.launcher.pid,
    };
  }

  /** Resolves once the cgroups of every job that has ended are gone (they go a little after the job). */
  cgroupsRemoved(): Promise<void> {
    return this.supervisor.cgroupsRemoved();
  }

  /** Lets go of every job and watcher. Jobs keep running; the next Jobber on this state directory adopts them. */
  close(): Promise<void> {
    if (!this.closing) {
      clearInterval(this.retentionTimer);
      this.retentionTimer = undefined;
      const released = this.supervisor.releaseAll();
      this.launcher.stop();
      this.ids.close();
      this.closing = released;
    }
    return this.closing;
  }

  /** Removes finished jobs older than the retention now, and again every period (at least hourly). */
  private startRetention(retentionMs: number): void {
    if (retentionMs <= 0) return;
    const sweep = () => {
      const removed = removeExpiredJobs(
        this.store,
        (id) => this.supervisor.get(id) !== undefined,
        retentionMs,
      );
      for (const failure of removed.failures) this.options.warn?.(`retention: ${failure}`);
    };
    sweep();
    this.retentionTimer = setInterval(sweep, retentionPeriodMs(retentionMs));
    // A timer of the library must not keep its host process alive.
    this.retentionTimer.unref?.();
  }

  /**
   * Jobs outlive the daemon. Watch the ones still running again, and finish
   * the bookkeeping of those that ended while nobody was watching.
   */
  private adoptRunningJobs(): void {
    const adopted = new Set<string>();
    for (const tenant of this.store.tenants()) {
      for (const id of this.store.ids(tenant)) {
        if (this.store.readFinalStatus(tenant, id)) continue;
        const record = this.store.read(tenant, id);
        if (!record) continue;
        const cgroup = this.cgroups.open(tenant, String(id));
        this.supervisor.track(record, cgroup, this.openJobPidfd(tenant, id));
        adopted.add(`${tenant}/${id}`);
      }
    }
    // Cgroups of jobs that ended as the last daemon went away: theirs to remove, left to us.
    for (const name of this.cgroups.list()) {
      const [tenant, id] = name.split("/");
      if (tenant && id && !adopted.has(name)) this.supervisor.removeWhenEmpty(this.cgroups.open(tenant, id));
    }
    // Tenant cgroups of a daemon that died between a tenant's last job and its cleanup.
    this.cgroups.sweep();
  }

  /** A pidfd of the job's init, if the PID recorded for it still is that init. */
  private openJobPidfd(tenant: string, id: number): number | undefined {
    const pid = this.store.readPid(tenant, id);
    const pidfd = pid === undefined ? undefined : openPidfd(pid);
    if (pidfd === undefined) return undefined;
    // Checked after opening the pidfd, so the PID cannot be reused in between.
    let membership = "";
    try {
      membership = readFileSync(`/proc/${pid}/cgroup`, "utf8");
    } catch {
      // Gone already.
    }
    const unified = membership.split("\n").find((line) => line.startsWith("0::"));
    if (unified?.endsWith(`/${this.cgroupParent}/${tenant}/${id}`)) return pidfd;
    closeSync(pidfd);
    return undefined;
  }
}

function endedEvent(record: JobRecord, status: JobStatus, logPath: string): JobEnded {
  const { id, argv, command, createdAt, limits, tenant } = record;
  const logTruncated = logReachedCap(logPath, limits);
  return { tenant, job: { id, argv, command, createdAt, limits, status, logTruncated } };
}

/** The start call's error for a command the job could not even look up or enter. */
function launchRefusal(record: JobRecord, outcome: LaunchOutcome & { ok: false }): JobberError | undefined {
  const program = record.argv[0] as string;
  if (outcome.step === "resolve") {
    if (outcome.errno === constants.errno.EACCES) {
      return new JobberError("INVALID_ARGUMENT", `not an executable file for the job's user: ${program}`, {
        reason: "NOT_EXECUTABLE",
      });
    }
    const searched = program.includes("/") ? "" : ` (searched ${searchPathOf(record.env ?? [])})`;
    return new JobberError("INVALID_ARGUMENT", `command not found: ${program}${searched}`, {
      reason: "COMMAND_NOT_FOUND",
    });
  }
  if (outcome.step === "chdir") {
    return new JobberError(
      "INVALID_ARGUMENT",
      `cannot enter the working directory ${record.workdir ?? "/"}: ${errnoName(outcome.errno)}`,
    );
  }
  return undefined;
}
