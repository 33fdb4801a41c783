/*
 * The job launcher: everything that must happen between clone and execve.
 *
 * Bun is multi-threaded, so a child cannot be set up from JavaScript after a
 * fork (the same reason runc has its C nsexec). This file is compiled at run
 * time by TinyCC through bun:ffi's `cc`. It includes no headers: it declares
 * the few libc entry points it needs and otherwise makes raw system calls,
 * which is also all a child of a multi-threaded process may safely do.
 *
 * Process tree of one job:
 *
 *   jobberd ──clone3──▶ init (PID 1 of new PID/mount/net/UTS/IPC namespaces,
 *                        │    born inside the job's cgroup)
 *                        └──fork──▶ command (PID 2, execve of the user's argv)
 *
 * init records the command's exit status in the job directory, so the daemon
 * can die and come back without losing it. When init exits the kernel kills
 * whatever else is left in the PID namespace.
 */

typedef unsigned long u64;
typedef long i64;

extern long syscall(long number, ...);
extern int *__errno_location(void);

#if defined(__x86_64__)
#define SYS_read 0
#define SYS_write 1
#define SYS_close 3
#define SYS_rt_sigaction 13
#define SYS_rt_sigprocmask 14
#define SYS_ioctl 16
#define SYS_dup3 292
#define SYS_socket 41
#define SYS_clone 56
#define SYS_execve 59
#define SYS_wait4 61
#define SYS_kill 62
#define SYS_chdir 80
#define SYS_setuid 105
#define SYS_setgid 106
#define SYS_setpgid 109
#define SYS_setsid 112
#define SYS_setgroups 116
#define SYS_rt_sigtimedwait 128
#define SYS_mount 165
#define SYS_sethostname 170
#define SYS_exit_group 231
#define SYS_waitid 247
#define SYS_openat 257
#define SYS_pipe2 293
#define SYS_renameat2 316
#elif defined(__aarch64__)
/* asm-generic numbers; not exercised by CI, which is x86_64. */
#define SYS_read 63
#define SYS_write 64
#define SYS_close 57
#define SYS_rt_sigaction 134
#define SYS_rt_sigprocmask 135
#define SYS_ioctl 29
#define SYS_dup3 24
#define SYS_socket 198
#define SYS_clone 220
#define SYS_execve 221
#define SYS_wait4 260
#define SYS_kill 129
#define SYS_chdir 49
#define SYS_setuid 146
#define SYS_setgid 144
#define SYS_setpgid 154
#define SYS_setsid 157
#define SYS_setgroups 159
#define SYS_rt_sigtimedwait 137
#define SYS_mount 40
#define SYS_sethostname 161
#define SYS_exit_group 94
#define SYS_waitid 95
#define SYS_openat 56
#define SYS_pipe2 59
#define SYS_renameat2 276
#else
#error "jobber's launcher supports x86_64 and aarch64"
#endif
/* Same number on every architecture. */
#define SYS_pidfd_send_signal 424
#define SYS_pidfd_open 434
#define SYS_clone3 435
#define SYS_close_range 436
#define SYS_mount_setattr 442

#define CLONE_NEWNS 0x00020000UL
#define CLONE_NEWUTS 0x04000000UL
#define CLONE_NEWIPC 0x08000000UL
#define CLONE_NEWPID 0x20000000UL
#define CLONE_NEWNET 0x40000000UL
#define CLONE_PIDFD 0x00001000UL
#define CLONE_INTO_CGROUP 0x200000000UL

#define SIGINT 2
#define SIGQUIT 3
#define SIGKILL 9
#define SIGUSR1 10
#define SIGUSR2 12
#define SIGTERM 15
#define SIGCHLD 17
#define SIGHUP 1
#define SIGSTOP 19
#define NSIG 64

#define SIG_SETMASK 2
#define WNOHANG 1
#define WEXITED 4
#define WALL 0x40000000
#define P_PIDFD 3
#define EINTR 4
#define ECHILD 10
#define EAGAIN 11
#define ENOENT 2

#define AT_FDCWD -100
#define O_RDONLY 0
#define O_WRONLY 1
#define O_CREAT 0100
#define O_TRUNC 01000
#define O_CLOEXEC 02000000

#define MS_RDONLY 1UL
#define MS_NOSUID 2UL
#define MS_NODEV 4UL
#define MS_NOEXEC 8UL
#define MS_REC 16384UL
#define MS_PRIVATE (1UL << 18)

#define AF_INET 2
#define SOCK_DGRAM 2
#define SIOCGIFFLAGS 0x8913
#define SIOCSIFFLAGS 0x8914
#define IFF_UP 1

struct clone_args {
  u64 flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

struct mount_attr {
  u64 attr_set, attr_clr, propagation, userns_fd;
};
#define MOUNT_ATTR_RDONLY 0x1UL
#define MOUNT_ATTR_NOSUID 0x2UL
#define AT_RECURSIVE 0x8000

struct kernel_sigaction {
  u64 handler, flags, restorer, mask;
};

struct ifreq {
  char name[16];
  short flags;
  char pad[22];
};

/* Integer parameters of one launch; the layout is mirrored in launch.ts. */
struct launch_config {
  int cgroup_fd; /* cgroup v2 directory the job is born in (CLONE_INTO_CGROUP) */
  int log_fd;    /* the job's log, opened O_WRONLY|O_APPEND: stdout and stderr */
  int dir_fd;    /* the job's directory: init writes the exit status here */
  int uid;       /* the command runs as uid:gid */
  int gid;
  int v1_count;  /* cgroup v1 cgroup.procs files to join before anything runs */
  int v1_fds[8];
};

/* String parameters, each a NULL-terminated array of C strings. */
struct launch_strings {
  char *const *argv;  /* argv[0] is the resolved path */
  char *const *envp;
  char *const *masks; /* directories to hide under an empty read-only tmpfs */
  const char *cwd;
  const char *hostname;
};

#define sys(...) syscall(__VA_ARGS__)

static int last_errno(void) { return *__errno_location(); }

static u64 strlen_(const char *s) {
  u64 n = 0;
  while (s[n]) n++;
  return n;
}

static void sigset_fill(u64 *set) { *set = ~0UL; }

static void sigset_add(u64 *set, int sig) { *set |= 1UL << (sig - 1); }

/* Writes "<word> <number>\n" to <dir>/exit atomically (tmp file + rename), so
 * a reader sees either no status or a whole one. */
static void record_exit(int dir_fd, const char *word, long number, const char *detail) {
  char buf[128];
  int n = 0;
  while (*word) buf[n++] = *word++;
  buf[n++] = ' ';
  if (number < 0) {
    buf[n++] = '-';
    number = -number;
  }
  char digits[24];
  int d = 0;
  do {
    digits[d++] = (char)('0' + number % 10);
    number /= 10;
  } while (number > 0);
  while (d > 0) buf[n++] = digits[--d];
  if (detail) {
    buf[n++] = ' ';
    while (*detail && n < 120) buf[n++] = *detail++;
  }
  buf[n++] = '\n';
  int fd = (int)sys(SYS_openat, dir_fd, "exit.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  sys(SYS_write, fd, buf, n);
  sys(SYS_close, fd);
  sys(SYS_renameat2, dir_fd, "exit.tmp", dir_fd, "exit", 0);
}

static void init_fail(int dir_fd, const char *stage) {
  record_exit(dir_fd, "failed", last_errno(), stage);
  sys(SYS_exit_group, 127);
}

static int write_all(int fd, const char *buf, u64 len) {
  while (len > 0) {
    long n = sys(SYS_write, fd, buf, len);
    if (n < 0) {
      if (last_errno() == EINTR) continue;
      return -1;
    }
    buf += n;
    len -= (u64)n;
  }
  return 0;
}

static int bring_loopback_up(void) {
  int fd = (int)sys(SYS_socket, AF_INET, SOCK_DGRAM | O_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct ifreq req;
  for (int i = 0; i < (int)sizeof req; i++) ((char *)&req)[i] = 0;
  req.name[0] = 'l';
  req.name[1] = 'o';
  int rc = (int)sys(SYS_ioctl, fd, SIOCGIFFLAGS, &req);
  if (rc == 0) {
    req.flags |= IFF_UP;
    rc = (int)sys(SYS_ioctl, fd, SIOCSIFFLAGS, &req);
  }
  sys(SYS_close, fd);
  return rc;
}

/* The command: PID 2 of the job. Never returns. */
static void exec_command(const struct launch_config *cfg, const struct launch_strings *str, int report_fd) {
  u64 none = 0;
  /* Its own process group, so that init can signal the whole pipeline. */
  sys(SYS_setpgid, 0, 0);
  if (cfg->uid != 0 || cfg->gid != 0) {
    if (sys(SYS_setgroups, 0, 0) < 0 || sys(SYS_setgid, cfg->gid) < 0 || sys(SYS_setuid, cfg->uid) < 0) goto fail;
  }
  if (sys(SYS_chdir, str->cwd) < 0) goto fail;
  /* The job directory stays open in init only. */
  sys(SYS_close, 3);
  sys(SYS_rt_sigprocmask, SIG_SETMASK, &none, 0, 8);
  sys(SYS_execve, str->argv[0], str->argv, str->envp);
fail: {
  int err = last_errno();
  sys(SYS_write, report_fd, &err, sizeof err);
  sys(SYS_exit_group, 127);
}
}

static const char *const private_tmp[] = {"/tmp", "/var/tmp", "/dev/shm", 0};

/* PID 1 of the job. Never returns. */
static void run_init(const struct launch_config *cfg, const struct launch_strings *str) {
  int dir_fd = cfg->dir_fd;

  /* Signals were blocked by the parent before clone3; drop Bun's handlers,
   * which point at code that must never run here. */
  struct kernel_sigaction dfl = {0, 0, 0, 0};
  for (int sig = 1; sig <= NSIG; sig++) {
    if (sig != SIGKILL && sig != SIGSTOP) sys(SYS_rt_sigaction, sig, &dfl, 0, 8);
  }
  /* A session of its own: a terminal's Ctrl+C aimed at jobberd must not reach jobs. */
  sys(SYS_setsid);

  /* cgroup v1 controllers (limits on a v1-hybrid host): writing 0 moves the
   * writer itself. Done before the command exists, so it is born limited. */
  for (int i = 0; i < cfg->v1_count; i++) {
    if (write_all(cfg->v1_fds[i], "0", 1) < 0) init_fail(dir_fd, "join-cgroup-v1");
  }

  /* Mount changes below must not propagate back to the host. */
  if (sys(SYS_mount, "none", "/", 0, MS_REC | MS_PRIVATE, 0) < 0) init_fail(dir_fd, "mount-private");
  /* The host's whole tree, read-only and without setuid, for this job only:
   * it writes its log (through the fd it was given) and its private scratch
   * directories below, nothing else. Device nodes such as /dev/null stay
   * writable; a read-only mount only stops changes to files and directories. */
  struct mount_attr read_only = {MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, 0, 0, 0};
  if (sys(SYS_mount_setattr, AT_FDCWD, "/", AT_RECURSIVE, &read_only, sizeof read_only) < 0)
    init_fail(dir_fd, "read-only-root");
  if (sys(SYS_mount, "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, 0) < 0)
    init_fail(dir_fd, "mount-proc");
  /* A sysfs of the job's own network namespace: only its interfaces show. */
  if (sys(SYS_mount, "sysfs", "/sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, 0) < 0)
    init_fail(dir_fd, "mount-sys");
  /* Private, writable scratch space instead of the host's /tmp. */
  for (const char *const *tmp = private_tmp; *tmp; tmp++) {
    long rc = sys(SYS_mount, "tmpfs", *tmp, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    if (rc < 0 && last_errno() != ENOENT) init_fail(dir_fd, "mount-tmp");
  }
  for (char *const *mask = str->masks; *mask; mask++) {
    long rc = sys(SYS_mount, "tmpfs", *mask, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=0");
    if (rc < 0 && last_errno() != ENOENT) init_fail(dir_fd, "mask");
  }
  if (bring_loopback_up() < 0) init_fail(dir_fd, "loopback-up");
  sys(SYS_sethostname, str->hostname, strlen_(str->hostname));

  /* stdin from /dev/null, stdout and stderr to the log. */
  int null_fd = (int)sys(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY, 0);
  if (null_fd < 0) init_fail(dir_fd, "open-dev-null");
  if (null_fd != 0) {
    sys(SYS_dup3, null_fd, 0, 0);
    sys(SYS_close, null_fd);
  }
  sys(SYS_dup3, cfg->log_fd, 1, 0);
  sys(SYS_dup3, cfg->log_fd, 2, 0);
  /* Keep only stdio and the job directory (as fd 3): the daemon's sockets,
   * keys and other jobs' files must not leak into the job. */
  if (dir_fd != 3) {
    sys(SYS_dup3, dir_fd, 3, 0);
    dir_fd = 3;
  }
  sys(SYS_close_range, 4, ~0U, 0);

  /* A close-on-exec pipe tells init whether execve worked: EOF means yes,
   * four bytes are the errno. */
  int report[2];
  if (sys(SYS_pipe2, report, O_CLOEXEC) < 0) init_fail(dir_fd, "pipe");
  long command = sys(SYS_clone, SIGCHLD, 0, 0, 0, 0);
  if (command < 0) init_fail(dir_fd, "fork");
  if (command == 0) {
    sys(SYS_close, report[0]);
    exec_command(cfg, str, report[1]);
  }
  sys(SYS_close, report[1]);
  int exec_errno = 0;
  long got;
  do got = sys(SYS_read, report[0], &exec_errno, sizeof exec_errno);
  while (got < 0 && last_errno() == EINTR);
  sys(SYS_close, report[0]);
  if (got == sizeof exec_errno) {
    record_exit(dir_fd, "failed", exec_errno, "exec");
    sys(SYS_exit_group, 127);
  }

  /* Reap every orphan, forward termination signals to the command's process
   * group, and leave when the command itself is gone. */
  u64 waited = 0;
  sigset_add(&waited, SIGCHLD);
  sigset_add(&waited, SIGTERM);
  sigset_add(&waited, SIGINT);
  sigset_add(&waited, SIGHUP);
  sigset_add(&waited, SIGQUIT);
  sigset_add(&waited, SIGUSR1);
  sigset_add(&waited, SIGUSR2);
  char info[128];
  for (;;) {
    int sig = (int)sys(SYS_rt_sigtimedwait, &waited, info, 0, 8);
    if (sig < 0) continue;
    if (sig != SIGCHLD) {
      if (sys(SYS_kill, -command, sig) < 0) sys(SYS_kill, command, sig);
      continue;
    }
    for (;;) {
      int status = 0;
      long pid = sys(SYS_wait4, -1, &status, WNOHANG, 0);
      if (pid <= 0) break;
      if (pid != command) continue;
      if ((status & 0x7f) == 0) {
        record_exit(dir_fd, "exited", (status >> 8) & 0xff, 0);
        sys(SYS_exit_group, (status >> 8) & 0xff);
      }
      record_exit(dir_fd, "signaled", status & 0x7f, 0);
      sys(SYS_exit_group, 128 + (status & 0x7f));
    }
  }
}

/*
 * Starts a job. On success returns 0 and stores the host PID of init in
 * out[0] and a pidfd for it in out[1]; on failure returns -errno. Never
 * returns in the child.
 */
int jobber_launch(const struct launch_config *cfg, const struct launch_strings *str, int *out) {
  u64 all, old;
  sigset_fill(&all);
  /* Block every signal across clone3 so the child starts with none pending
   * delivery to handlers it must not run. */
  sys(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, 8);

  int pidfd = -1;
  struct clone_args args;
  for (int i = 0; i < (int)sizeof args; i++) ((char *)&args)[i] = 0;
  args.flags = CLONE_PIDFD | CLONE_INTO_CGROUP | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWUTS |
               CLONE_NEWIPC;
  args.pidfd = (u64)&pidfd;
  /* No exit signal: Bun's SIGCHLD-driven reaping never sees the job; the
   * daemon reaps it through its pidfd. */
  args.exit_signal = 0;
  args.cgroup = (u64)cfg->cgroup_fd;

  long pid = sys(SYS_clone3, &args, sizeof args);
  if (pid == 0) run_init(cfg, str);
  int err = last_errno();
  sys(SYS_rt_sigprocmask, SIG_SETMASK, &old, 0, 8);
  if (pid < 0) return -err;
  out[0] = (int)pid;
  out[1] = pidfd;
  return 0;
}

/* Reaps init once it has exited: 0 when reaped, 1 while it runs, -errno. */
int jobber_reap(int pidfd) {
  char info[128];
  for (int i = 0; i < 128; i++) info[i] = 0;
  if (sys(SYS_waitid, P_PIDFD, pidfd, info, WEXITED | WNOHANG | WALL, 0) < 0) return -last_errno();
  /* si_pid is 0 when nothing has exited yet. */
  return *(int *)(info + 16) == 0 ? 1 : 0;
}

/* Sends a signal through a pidfd, immune to PID reuse: 0 or -errno. */
int jobber_signal(int pidfd, int sig) {
  if (sys(SYS_pidfd_send_signal, pidfd, sig, 0, 0) < 0) return -last_errno();
  return 0;
}

/* A pidfd for a process the daemon did not start (a re-adopted job): fd or -errno. */
int jobber_pidfd_open(int pid) {
  long fd = sys(SYS_pidfd_open, pid, 0);
  return fd < 0 ? -last_errno() : (int)fd;
}
