/*
 * The job launcher: everything that must happen between clone and execve.
 *
 * Bun is multi-threaded, so a child cannot be set up from JavaScript after a
 * fork (the same reason runc has its C nsexec). This file is compiled at run
 * time by TinyCC through bun:ffi's `cc`. It includes no headers and does not
 * use libc: it makes raw system calls, which is all a child of a
 * multi-threaded process may safely do, and all a child that has unmapped
 * libc can do (see shed_and_run_init).
 *
 * x86_64 only: the system call entry and two helpers are assembly.
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

#if !defined(__x86_64__)
#error "jobber's launcher supports x86_64 only"
#endif

/* raw6: a system call with up to six arguments, returning -errno on failure.
 * call_on_stack: switches to another stack and calls fn(arg), never returning. */
long raw6(long n, long a, long b, long c, long d, long e, long f);
void call_on_stack(void *sp, void (*fn)(void *), void *arg);
__asm__(
  ".text\n"
  ".globl raw6\n"
  "raw6:\n"
  "  mov %rdi, %rax\n"
  "  mov %rsi, %rdi\n"
  "  mov %rdx, %rsi\n"
  "  mov %rcx, %rdx\n"
  "  mov %r8, %r10\n"
  "  mov %r9, %r8\n"
  "  mov 8(%rsp), %r9\n"
  "  syscall\n"
  "  ret\n"
  ".globl call_on_stack\n"
  "call_on_stack:\n"
  "  mov %rdi, %rsp\n"
  "  mov %rdx, %rdi\n"
  "  call *%rsi\n"
  "  ud2\n");

#define SYS_read 0
#define SYS_write 1
#define SYS_close 3
#define SYS_mmap 9
#define SYS_munmap 11
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

/* errno of the last failed call. Not libc's: that lives in thread-local
 * storage, which init unmaps. Only ever used from one thread per process. */
static int g_errno;
static long sys_checked(long r) {
  if (r < 0 && r > -4096) {
    g_errno = (int)-r;
    return -1;
  }
  return r;
}
#define sysv(n, a, b, c, d, e, f, ...) \
  sys_checked(raw6((long)(n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f)))
#define sys(...) sysv(__VA_ARGS__, 0, 0, 0, 0, 0, 0)

static int last_errno(void) { return g_errno; }

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
  /* Field by field: an aggregate initialiser makes TinyCC call memset, which
   * is gone once init has shed jobberd's mappings. */
  struct kernel_sigaction dfl;
  dfl.handler = 0;
  dfl.flags = 0;
  dfl.restorer = 0;
  dfl.mask = 0;
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
  struct mount_attr read_only;
  read_only.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID;
  read_only.attr_clr = 0;
  read_only.propagation = 0;
  read_only.userns_fd = 0;
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


/* ── Shedding jobberd's address space ───────────────────────────────────
 * clone3 without CLONE_VM gives init a copy-on-write copy of the whole
 * daemon (~100 MB of mappings). Kept, that copy costs the daemon a page
 * fault for every page it writes afterwards, and pins ~3.5 MB per running
 * job for the job's whole life. Init needs only a stack, its parameters and
 * this file's code and data: it copies the parameters to a fresh mapping,
 * moves its stack there, and unmaps everything else (~24 KB remain). */

#define SHED_STACK (128UL * 1024)
#define TASK_END 0x7ffffffff000UL
#define PAGE 4096UL

struct shed_args {
  struct launch_config cfg;
  struct launch_strings str;
  u64 keep[2][2];
};

static u64 round_up(u64 n, u64 to) { return (n + to - 1) & ~(to - 1); }

static char *bump(char **cursor, u64 size) {
  char *p = *cursor;
  *cursor += round_up(size, 16);
  return p;
}

static char *copy_str(char **cursor, const char *s) {
  u64 n = strlen_(s) + 1;
  char *d = bump(cursor, n);
  for (u64 i = 0; i < n; i++) d[i] = s[i];
  return d;
}

static char *const *copy_vec(char **cursor, char *const *v) {
  u64 n = 0;
  while (v[n]) n++;
  char **d = (char **)bump(cursor, (n + 1) * 8);
  for (u64 i = 0; i < n; i++) d[i] = copy_str(cursor, v[i]);
  d[n] = 0;
  return d;
}

static u64 vec_bytes(char *const *v) {
  u64 total = 16;
  for (; *v; v++) total += 8 + round_up(strlen_(*v) + 1, 16);
  return total + 16;
}

static void run_init(const struct launch_config *cfg, const struct launch_strings *str);

/* The span of the mappings holding this file's code and data. TinyCC puts
 * the code in a mapping of its own and the data (variables, string
 * literals) right after it: keep from the start of the code to a page past
 * the last of this file's variables. */
static int code_span(u64 *lo, u64 *hi) {
  u64 targets[3];
  targets[0] = (u64)&run_init;
  targets[1] = (u64)&g_errno;
  targets[2] = (u64)private_tmp;
  *lo = ~0UL;
  *hi = 0;
  int fd = (int)sys(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) return -1;
  char buf[4096];
  int state = 0;
  u64 start = 0, end = 0;
  for (;;) {
    long n = sys(SYS_read, fd, buf, sizeof buf);
    if (n <= 0) break;
    for (long i = 0; i < n; i++) {
      char c = buf[i];
      if (state == 0 || state == 1) {
        int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (digit >= 0) {
          if (state == 0) start = start * 16 + (u64)digit;
          else end = end * 16 + (u64)digit;
          continue;
        }
        if (state == 0 && c == '-') { state = 1; continue; }
        state = 2;
      }
      if (c == '\n') {
        if (targets[0] >= start && targets[0] < end) *lo = start;
        state = 0;
        start = end = 0;
      }
    }
  }
  sys(SYS_close, fd);
  for (int t = 0; t < 3; t++) {
    u64 past = round_up(targets[t] + 1, PAGE) + PAGE;
    if (past > *hi) *hi = past;
  }
  /* Everything kept must lie in [lo, hi): data placed below the code would
   * be unmapped, so then do not shed at all. */
  for (int t = 0; t < 3; t++) {
    if (targets[t] < *lo) return -1;
  }
  return *lo < *hi ? 0 : -1;
}

static void shed_then_init(void *arg) {
  struct shed_args *a = (struct shed_args *)arg;
  u64 lo0 = a->keep[0][0], hi0 = a->keep[0][1], lo1 = a->keep[1][0], hi1 = a->keep[1][1];
  if (lo1 < lo0) {
    u64 t = lo0; lo0 = lo1; lo1 = t;
    t = hi0; hi0 = hi1; hi1 = t;
  }
  if (lo0 > 0) sys(SYS_munmap, 0, lo0);
  if (lo1 > hi0) sys(SYS_munmap, hi0, lo1 - hi0);
  if (TASK_END > hi1) sys(SYS_munmap, hi1, TASK_END - hi1);
  run_init(&a->cfg, &a->str);
}

/* glibc (≥ 2.35) registers every thread's restartable-sequence area, in
 * its TLS, with the kernel, and a forked child inherits the registration.
 * Once that memory is unmapped the kernel's rseq update on every return to
 * user space fails and raises SIGSEGV, so unregister first. */
/* Weak: a libc without them (glibc < 2.35, musl) registers no rseq area. */
extern long __rseq_offset __attribute__((weak));
extern unsigned int __rseq_size __attribute__((weak));
#define SYS_rseq 334
#define RSEQ_FLAG_UNREGISTER 1
#define RSEQ_SIG 0x53053053
u64 thread_pointer(void);
__asm__(".globl thread_pointer\nthread_pointer:\n  mov %fs:0, %rax\n  ret\n");

/* 0 when no rseq area is registered any more, -1 when one may still be. */
static int rseq_unregister(void) {
  if (&__rseq_size == 0 || &__rseq_offset == 0 || __rseq_size == 0) return 0;
  u64 length = __rseq_size < 32 ? 32 : __rseq_size;
  return sys(SYS_rseq, thread_pointer() + __rseq_offset, length, RSEQ_FLAG_UNREGISTER, RSEQ_SIG) < 0 ? -1 : 0;
}

static void shed_and_run_init(const struct launch_config *cfg, const struct launch_strings *str) {
  u64 code_lo, code_hi;
  /* Should the layout ever not be found, run unshed: correct, only heavier. */
  if (code_span(&code_lo, &code_hi) < 0) run_init(cfg, str);
  u64 data = round_up(sizeof(struct shed_args), 16) + vec_bytes(str->argv) + vec_bytes(str->envp) +
             vec_bytes(str->masks) + round_up(strlen_(str->cwd) + 1, 16) + round_up(strlen_(str->hostname) + 1, 16);
  u64 size = SHED_STACK + round_up(data, PAGE);
  long region = sys(SYS_mmap, 0, size, 3 /* PROT_READ|PROT_WRITE */, 0x22 /* MAP_PRIVATE|MAP_ANONYMOUS */, -1, 0);
  if (region < 0) run_init(cfg, str);
  char *cursor = (char *)region + SHED_STACK;
  struct shed_args *a = (struct shed_args *)bump(&cursor, sizeof(struct shed_args));
  a->cfg = *cfg;
  a->str.argv = copy_vec(&cursor, str->argv);
  a->str.envp = copy_vec(&cursor, str->envp);
  a->str.masks = copy_vec(&cursor, str->masks);
  a->str.cwd = copy_str(&cursor, str->cwd);
  a->str.hostname = copy_str(&cursor, str->hostname);
  /* Shedding with an rseq area still registered would fault on the next
   * return to user space: run unshed instead. */
  if (rseq_unregister() < 0) run_init(cfg, str);
  a->keep[0][0] = code_lo;
  a->keep[0][1] = code_hi;
  a->keep[1][0] = (u64)region;
  a->keep[1][1] = (u64)region + size;
  call_on_stack((char *)region + SHED_STACK - 64, shed_then_init, a);
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
  if (pid == 0) shed_and_run_init(cfg, str);
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
