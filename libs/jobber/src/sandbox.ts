// What a job may see and hold, beyond its namespaces: the paths hidden from
// it and the per-process limits it cannot raise. The mechanism is in
// launch/launcher.c; the policy is here.

/** Host directories every job sees as empty: no host unix sockets (D-Bus, docker.sock, …). */
export const MASKED_DIRS = ["/run", "/var/run"];

/** Kernel files that tell a job about the host or let it act on it; docker masks the same. */
export const MASKED_FILES = [
  "/proc/kcore",
  "/proc/keys",
  "/proc/timer_list",
  "/proc/sched_debug",
  "/proc/sysrq-trigger",
];

/**
 * Per-process limits of the command. Per-user kernel quotas are per host
 * uid, which each tenant has to itself (id-ranges.ts); these bound one job
 * within its tenant's share.
 */
export const JOB_RLIMITS = {
  /** Open files: what systemd gives a service by default (hard). */
  nofile: 65536,
  /** Queued signals. */
  sigpending: 4096,
  /** Bytes of POSIX message queues: the kernel's default. */
  msgqueue: 819200,
};

/** The user a job runs as inside its user namespace by default: nobody. */
export const DEFAULT_RUN_AS = { uid: 65534, gid: 65534 };
