// One small interface over both cgroup layouts, chosen once at start-up.
import type { ResolvedLimits } from "../limits";

/** The cgroup of one job. Lifecycle always goes through the cgroup v2 tree. */
export interface JobCgroup {
  readonly name: string;
  /** cgroup v2 `cgroup.events`: "populated 0" means every process of the job is gone. */
  readonly eventsPath: string;
  /** Opens what the launcher needs to start a process inside this cgroup; the caller closes the fds. */
  openForLaunch(): { cgroupFd: number; v1ProcsFds: number[] };
  /** True while any process of the job is alive; false when it is empty or gone. */
  populated(): boolean;
  /** SIGKILL to every process in the cgroup (`cgroup.kill`). */
  kill(): void;
  /** How many processes the OOM killer has killed in this cgroup. */
  oomKills(): number;
  /** Removes the cgroup (all its directories); it must be empty. Idempotent. */
  remove(): Promise<void>;
}

export interface CgroupDriver {
  /** "v2" on a unified host, "v1-hybrid" when limits live on v1 controllers. */
  readonly layout: "v2" | "v1-hybrid";
  /** Creates a job's cgroup with its limits applied. */
  create(name: string, limits: ResolvedLimits): JobCgroup;
  /** The cgroup of an existing job (re-adoption after a restart). */
  open(name: string): JobCgroup;
  /** Names of the job cgroups that exist now (any of their directories). */
  list(): string[];
}
