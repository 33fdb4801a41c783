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
 *   jobberd ──clone3──▶ init   PID 1 of new PID/mount/net/UTS/IPC namespaces,
 *                        │     born inside the job's cgroup, host root; it
 *                        │     builds the job's view of the filesystem, then
 *                        └──clone(CLONE_NEWUSER)──▶ command
 *                              PID 2, in a user namespace of its own whose
 *                              ids map to the tenant's host range; drops to
 *                              the run-as user, no_new_privs, seccomp, execve
 *
 * The command's user namespace owns none of the other namespaces: even as
 * root inside it, the job holds no capability over its mounts, network,
 * hostname or PID namespace, and none at all in the host's user namespace.
 *
 * init tells the daemon, through the ready pipe, whether the command was
 * executed ("ok") or which step failed ("failed <step> <errno>"), and records
 * how the command ended in the job directory, so the daemon can die and come
 * back without losing it. When init exits the kernel kills whatever else is
 * left in the PID namespace.
 */

typedef unsigned long u64;
typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned char u8;

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

/* System call numbers: arch/x86/entry/syscalls/syscall_64.tbl */
#define SYS_read 0
#define SYS_write 1
#define SYS_close 3
#define SYS_mmap 9
#define SYS_munmap 11
#define SYS_rt_sigaction 13
#define SYS_rt_sigprocmask 14
#define SYS_ioctl 16
#define SYS_fcntl 72
#define SYS_socket 41
#define SYS_clone 56
#define SYS_execve 59
#define SYS_wait4 61
#define SYS_kill 62
#define SYS_chdir 80
#define SYS_umask 95
#define SYS_setpgid 109
#define SYS_setsid 112
#define SYS_setgroups 116
#define SYS_setresuid 117
#define SYS_setresgid 119
#define SYS_capset 126
#define SYS_rt_sigtimedwait 128
#define SYS_prctl 157
#define SYS_mount 165
#define SYS_sethostname 170
#define SYS_exit_group 231
#define SYS_keyctl 250
#define SYS_waitid 247
#define SYS_openat 257
#define SYS_mkdirat 258
#define SYS_mknodat 259
#define SYS_symlinkat 266
#define SYS_unshare 272
#define SYS_dup3 292
#define SYS_pipe2 293
#define SYS_prlimit64 302
#define SYS_renameat2 316
#define SYS_seccomp 317
#define SYS_pidfd_send_signal 424
#define SYS_pidfd_open 434
#define SYS_clone3 435
#define SYS_close_range 436
#define SYS_mount_setattr 442

/* include/uapi/linux/sched.h */
#define CLONE_NEWTIME 0x00000080UL
#define CLONE_PIDFD 0x00001000UL
#define CLONE_NEWNS 0x00020000UL
#define CLONE_NEWCGROUP 0x02000000UL
#define CLONE_NEWUTS 0x04000000UL
#define CLONE_NEWIPC 0x08000000UL
#define CLONE_NEWUSER 0x10000000UL
#define CLONE_NEWPID 0x20000000UL
#define CLONE_NEWNET 0x40000000UL
#define CLONE_INTO_CGROUP 0x200000000UL
#define CLONE_NAMESPACES \
  (CLONE_NEWTIME | CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET)

/* include/uapi/asm-generic/signal.h (x86_64) */
#define SIGHUP 1
#define SIGINT 2
#define SIGQUIT 3
#define SIGKILL 9
#define SIGUSR1 10
#define SIGUSR2 12
#define SIGTERM 15
#define SIGCHLD 17
#define SIGSTOP 19
#define SIGXFSZ 25
#define NSIG 64
#define SIG_IGN 1UL
#define SIG_SETMASK 2
/* The kernel's sigset_t: 64 bits, one per signal (rt_sigprocmask's sigsetsize). */
#define SIGSET_BYTES 8
#define SIGBIT(sig) (1UL << ((sig) - 1))

/* include/uapi/linux/wait.h */
#define WNOHANG 1
#define WEXITED 4
#define WALL 0x40000000
#define P_PIDFD 3
/* The status word of wait4 (include/uapi/linux/wait.h, W* macros in libc). */
#define WTERMSIG(s) ((s) & 0x7f)
#define WEXITSTATUS(s) (((s) >> 8) & 0xff)

/* include/uapi/asm-generic/errno-base.h, errno.h */
#define ENOENT 2
#define EINTR 4
#define EACCES 13
#define ENOTDIR 20
#define EINVAL 22
#define ENAMETOOLONG 36
#define ENOSYS 38
#define EOPNOTSUPP 95
#define ELOOP 40
#define EPERM 1

/* include/uapi/linux/fcntl.h, asm-generic/fcntl.h, linux/stat.h */
#define AT_FDCWD -100
#define O_RDONLY 0
#define O_WRONLY 1
#define O_CREAT 0100
#define O_TRUNC 01000
#define O_CLOEXEC 02000000
#define S_IFCHR 0020000
#define F_DUPFD_CLOEXEC 1030
#define AT_RECURSIVE 0x8000

/* include/uapi/linux/mount.h */
#define MS_RDONLY 1UL
#define MS_NOSUID 2UL
#define MS_NODEV 4UL
#define MS_NOEXEC 8UL
#define MS_REMOUNT 32UL
#define MS_BIND 4096UL
#define MS_REC 16384UL
#define MS_PRIVATE (1UL << 18)
#define MOUNT_ATTR_RDONLY 0x1UL
#define MOUNT_ATTR_NOSUID 0x2UL

/* include/uapi/linux/socket.h, net.h, sockios.h, if.h */
#define AF_INET 2
#define SOCK_DGRAM 2
#define SIOCGIFFLAGS 0x8913
#define SIOCSIFFLAGS 0x8914
#define IFF_UP 1

/* include/uapi/linux/mman.h */
#define PROT_READ 1
#define PROT_WRITE 2
#define MAP_PRIVATE 0x02
#define MAP_ANONYMOUS 0x20

/* include/uapi/linux/prctl.h, capability.h, keyctl.h, asm-generic/resource.h */
#define PR_CAPBSET_DROP 24
#define PR_SET_NO_NEW_PRIVS 38
#define CAP_LAST_CAP_MAX 63
#define LINUX_CAPABILITY_VERSION_3 0x20080522
#define KEYCTL_JOIN_SESSION_KEYRING 1
#define RLIMIT_FSIZE 1
#define RLIMIT_NOFILE 7
#define RLIMIT_SIGPENDING 11
#define RLIMIT_MSGQUEUE 12

struct clone_args {
  u64 flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

struct mount_attr {
  u64 attr_set, attr_clr, propagation, userns_fd;
};

struct kernel_sigaction {
  u64 handler, flags, restorer, mask;
};

struct ifreq {
  char name[16];
  short flags;
  char pad[22];
};

struct rlimit64 {
  u64 soft, hard;
};

struct cap_header {
  u32 version;
  int pid;
};
struct cap_data {
  u32 effective, permitted, inheritable;
};

/* The parameters of one launch. Every field is 64 bits wide so that the
 * layout is one BigInt64Array on the TypeScript side (launch.ts, which
 * checks sizeof at start-up through jobber_config_size). */
#define MAX_V1_CONTROLLERS 8
struct launch_config {
  long cgroup_fd;    /* cgroup v2 directory the job is born in (CLONE_INTO_CGROUP) */
  long log_fd;       /* the job's log, opened O_WRONLY|O_APPEND: stdout and stderr */
  long dir_fd;       /* the job's directory: init writes the exit status here */
  long uid;          /* the command runs as uid:gid inside its user namespace */
  long gid;
  long host_id_base; /* the host uid and gid that id 0 of the job's user namespace maps to */
  long id_count;     /* how many ids the user namespace maps */
  long log_limit;    /* the most bytes the command may make any file (RLIMIT_FSIZE); 0 = no limit */
  long nofile;       /* RLIMIT_NOFILE, RLIMIT_SIGPENDING, RLIMIT_MSGQUEUE of the command */
  long sigpending;
  long msgqueue;
  long ready_fd;     /* set by jobber_launch: write end of the ready pipe */
  long v1_count;     /* cgroup v1 cgroup.procs files to join before anything runs */
  long v1_fds[MAX_V1_CONTROLLERS];
};

/* String parameters, each a NULL-terminated array of C strings. */
struct launch_strings {
  char *const *argv;         /* argv[0] as the user gave it: resolved here, in the job's view */
  char *const *envp;
  char *const *masked_dirs;  /* hidden under an empty read-only tmpfs */
  char *const *masked_files; /* hidden under /dev/null */
  const char *search_path;   /* directories argv[0] is looked up in when it has no slash */
  const char *cwd;
  const char *hostname;
};

/* The ready pipe and the exit record speak in these step names. */
enum step {
  STEP_JOIN_CGROUP_V1, STEP_UNSHARE_CGROUP, STEP_MOUNT_PRIVATE, STEP_READ_ONLY_ROOT, STEP_MOUNT_PROC,
  STEP_MOUNT_SYS, STEP_MOUNT_DEV, STEP_MAKE_DEVICES, STEP_MOUNT_DEVPTS, STEP_MOUNT_TMP, STEP_MASK,
  STEP_PROC_SYS_READ_ONLY, STEP_LOOPBACK_UP, STEP_SETHOSTNAME, STEP_SETSID, STEP_SETPGID, STEP_SIGNALS, STEP_STDIO,
  STEP_CLOSE_FDS, STEP_RLIMIT, STEP_PIPE, STEP_OWNER, STEP_FORK, STEP_ID_MAP, STEP_SETGROUPS, STEP_SETGID,
  STEP_CAPABILITIES, STEP_SETUID, STEP_KEYRING, STEP_CHDIR, STEP_NO_NEW_PRIVS, STEP_SECCOMP,
  STEP_RESOLVE, STEP_EXEC,
};
static const char *const step_names[] = {
  "join-cgroup-v1", "unshare-cgroup", "mount-private", "read-only-root", "mount-proc",
  "mount-sys", "mount-dev", "make-devices", "mount-devpts", "mount-tmp", "mask",
  "proc-sys-read-only", "loopback-up", "sethostname", "setsid", "setpgid", "signals", "stdio",
  "close-fds", "rlimit", "pipe", "namespace-owner", "fork", "id-map", "setgroups", "setgid",
  "capabilities", "setuid", "keyring", "chdir", "no-new-privs", "seccomp",
  "resolve", "exec",
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

static void zero(void *p, u64 n) {
  for (u64 i = 0; i < n; i++) ((char *)p)[i] = 0;
}

/* Appends text to buf[*n], keeping room for a final newline. */
static void put_str(char *buf, int cap, int *n, const char *s) {
  while (*s && *n < cap - 1) buf[(*n)++] = *s++;
}

static void put_long(char *buf, int cap, int *n, long number) {
  char digits[24];
  int d = 0;
  u64 magnitude = number < 0 ? (u64)-number : (u64)number;
  do {
    digits[d++] = (char)('0' + magnitude % 10);
    magnitude /= 10;
  } while (magnitude > 0);
  if (number < 0 && *n < cap - 1) buf[(*n)++] = '-';
  while (d > 0 && *n < cap - 1) buf[(*n)++] = digits[--d];
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

/* ── init: the job's PID 1 ─────────────────────────────────────────────── */

/* Fixed descriptors of init once it has closed everything else. */
#define INIT_DIR_FD 3
#define INIT_READY_FD 4
#define FIRST_FREE_FD (INIT_READY_FD + 1)

static int g_ready_fd = -1;

/* Tells the daemon how the launch went: "ok\n" or "failed <step> <errno>\n".
 * Only the first call writes; the pipe is closed after it. */
static void report_ready(const char *line, int len) {
  if (g_ready_fd < 0) return;
  write_all(g_ready_fd, line, (u64)len);
  sys(SYS_close, g_ready_fd);
  g_ready_fd = -1;
}

/* Writes a line to <dir>/exit atomically (tmp file + rename), so a reader
 * sees either no status or a whole one. Returns -1 if it could not: the
 * daemon then decides the status from the cgroup alone. */
static int record_exit(int dir_fd, const char *line, int len) {
  int fd = (int)sys(SYS_openat, dir_fd, "exit.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  int rc = write_all(fd, line, (u64)len);
  sys(SYS_close, fd);
  if (rc < 0) return -1;
  return sys(SYS_renameat2, dir_fd, "exit.tmp", dir_fd, "exit", 0) < 0 ? -1 : 0;
}

/* "<word> <number>\n" */
static int exit_line(char *buf, int cap, const char *word, long number) {
  int n = 0;
  put_str(buf, cap, &n, word);
  put_str(buf, cap, &n, " ");
  put_long(buf, cap, &n, number);
  buf[n++] = '\n';
  return n;
}

/* A step failed: record it, tell the daemon, and end the job. */
static void init_fail(int dir_fd, enum step step, int err) {
  char line[96];
  int n = 0;
  put_str(line, sizeof line, &n, "failed ");
  put_str(line, sizeof line, &n, step_names[step]);
  put_str(line, sizeof line, &n, " ");
  put_long(line, sizeof line, &n, err);
  line[n++] = '\n';
  record_exit(dir_fd, line, n);
  report_ready(line, n);
  sys(SYS_exit_group, 127);
}

#define CHECK(dir_fd, call, step) \
  do { \
    if ((call) < 0) init_fail((dir_fd), (step), last_errno()); \
  } while (0)

static int bring_loopback_up(void) {
  int fd = (int)sys(SYS_socket, AF_INET, SOCK_DGRAM | O_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct ifreq req;
  zero(&req, sizeof req);
  req.name[0] = 'l';
  req.name[1] = 'o';
  int rc = (int)sys(SYS_ioctl, fd, SIOCGIFFLAGS, &req);
  if (rc == 0) {
    req.flags |= IFF_UP;
    rc = (int)sys(SYS_ioctl, fd, SIOCSIFFLAGS, &req);
  }
  int err = last_errno();
  sys(SYS_close, fd);
  g_errno = err;
  return rc;
}

/* The device nodes of the job's private /dev (Documentation/admin-guide/devices.txt). */
struct device {
  const char *path;
  u64 major, minor;
};
static const struct device devices[] = {
  {"/dev/null", 1, 3},    {"/dev/zero", 1, 5}, {"/dev/full", 1, 7},
  {"/dev/random", 1, 8},  {"/dev/urandom", 1, 9}, {"/dev/tty", 5, 0},
  {0, 0, 0},
};
static const char *const dev_links[][2] = {
  {"pts/ptmx", "/dev/ptmx"}, {"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"},
  {"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"}, {0, 0},
};
/* Private, writable scratch space instead of the host's. */
static const char *const private_tmp[] = {"/tmp", "/var/tmp", "/dev/shm", 0};

/* new_encode_dev (include/linux/kdev_t.h) */
static u64 dev_number(u64 major, u64 minor) {
  return (minor & 0xff) | (major << 8) | ((minor & ~0xffUL) << 12);
}

/* A /dev of the job's own: a few harmless devices, its own ptys, no host devices. */
static void make_private_dev(int dir_fd) {
  CHECK(dir_fd, sys(SYS_mount, "tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k"), STEP_MOUNT_DEV);
  for (const struct device *d = devices; d->path; d++) {
    CHECK(dir_fd, sys(SYS_mknodat, AT_FDCWD, d->path, S_IFCHR | 0666, dev_number(d->major, d->minor)),
          STEP_MAKE_DEVICES);
  }
  for (int i = 0; dev_links[i][0]; i++) {
    CHECK(dir_fd, sys(SYS_symlinkat, dev_links[i][0], AT_FDCWD, dev_links[i][1]), STEP_MAKE_DEVICES);
  }
  CHECK(dir_fd, sys(SYS_mkdirat, AT_FDCWD, "/dev/pts", 0755), STEP_MAKE_DEVICES);
  CHECK(dir_fd, sys(SYS_mkdirat, AT_FDCWD, "/dev/shm", 01777), STEP_MAKE_DEVICES);
  /* A devpts instance of its own: the host's terminals are not in it. */
  CHECK(dir_fd, sys(SYS_mount, "devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"),
        STEP_MOUNT_DEVPTS);
}

/* Builds the job's view of the filesystem. Runs as host root in the job's
 * new mount namespace; nothing here propagates back to the host. */
static void build_view(int dir_fd, const struct launch_strings *str) {
  CHECK(dir_fd, sys(SYS_mount, "none", "/", 0, MS_REC | MS_PRIVATE, 0), STEP_MOUNT_PRIVATE);
  /* The host's whole tree, read-only and without setuid, for this job only:
   * it writes its log (through the fd it was given) and its private scratch
   * directories below, nothing else. */
  struct mount_attr read_only;
  zero(&read_only, sizeof read_only);
  read_only.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID;
  CHECK(dir_fd, sys(SYS_mount_setattr, AT_FDCWD, "/", AT_RECURSIVE, &read_only, sizeof read_only),
        STEP_READ_ONLY_ROOT);
  CHECK(dir_fd, sys(SYS_mount, "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, 0), STEP_MOUNT_PROC);
  /* A sysfs of the job's own network namespace: only its interfaces show. */
  CHECK(dir_fd, sys(SYS_mount, "sysfs", "/sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, 0),
        STEP_MOUNT_SYS);
  make_private_dev(dir_fd);
  for (const char *const *tmp = private_tmp; *tmp; tmp++) {
    long rc = sys(SYS_mount, "tmpfs", *tmp, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    if (rc < 0 && last_errno() != ENOENT) init_fail(dir_fd, STEP_MOUNT_TMP, last_errno());
  }
  /* Kernel settings are the host's: readable, never writable. */
  CHECK(dir_fd, sys(SYS_mount, "/proc/sys", "/proc/sys", 0, MS_BIND | MS_REC, 0), STEP_PROC_SYS_READ_ONLY);
  CHECK(dir_fd, sys(SYS_mount_setattr, AT_FDCWD, "/proc/sys", AT_RECURSIVE, &read_only, sizeof read_only),
        STEP_PROC_SYS_READ_ONLY);
  for (char *const *mask = str->masked_dirs; *mask; mask++) {
    long rc = sys(SYS_mount, "tmpfs", *mask, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=0755");
    if (rc < 0 && last_errno() != ENOENT) init_fail(dir_fd, STEP_MASK, last_errno());
  }
  for (char *const *mask = str->masked_files; *mask; mask++) {
    long rc = sys(SYS_mount, "/dev/null", *mask, 0, MS_BIND, 0);
    if (rc < 0 && last_errno() != ENOENT) init_fail(dir_fd, STEP_MASK, last_errno());
  }
}

/* Lowers a limit to at most `value` (never raises one: jobberd may itself
 * lack CAP_SYS_RESOURCE, as in a container). */
static int lower_rlimit(int resource, u64 value) {
  struct rlimit64 limit;
  if (sys(SYS_prlimit64, 0, resource, 0, &limit) < 0) return -1;
  if (limit.hard > value) limit.hard = value;
  if (limit.soft > limit.hard) limit.soft = limit.hard;
  return (int)sys(SYS_prlimit64, 0, resource, &limit, 0);
}

/* Limits of the command that a job cannot raise again (it has no
 * CAP_SYS_RESOURCE in the host's user namespace). */
static void set_rlimits(int dir_fd, const struct launch_config *cfg) {
  CHECK(dir_fd, lower_rlimit(RLIMIT_NOFILE, (u64)cfg->nofile), STEP_RLIMIT);
  CHECK(dir_fd, lower_rlimit(RLIMIT_SIGPENDING, (u64)cfg->sigpending), STEP_RLIMIT);
  CHECK(dir_fd, lower_rlimit(RLIMIT_MSGQUEUE, (u64)cfg->msgqueue), STEP_RLIMIT);
}

/* ── the seccomp filter ────────────────────────────────────────────────
 * Calls the job has no business making; see docs/design.md for why each. */

/* include/uapi/linux/filter.h, bpf_common.h, seccomp.h, audit.h */
struct sock_filter {
  u16 code;
  u8 jt, jf;
  u32 k;
};
struct sock_fprog {
  u16 len;
  struct sock_filter *filter;
};
#define BPF_LD 0x00
#define BPF_W 0x00
#define BPF_ABS 0x20
#define BPF_JMP 0x05
#define BPF_JEQ 0x10
#define BPF_JGE 0x30
#define BPF_JSET 0x40
#define BPF_K 0x00
#define BPF_RET 0x06
#define SECCOMP_SET_MODE_FILTER 1
#define SECCOMP_RET_KILL_PROCESS 0x80000000U
#define SECCOMP_RET_ERRNO 0x00050000U
#define SECCOMP_RET_ALLOW 0x7fff0000U
#define AUDIT_ARCH_X86_64 0xc000003eU
#define X32_SYSCALL_BIT 0x40000000U
/* struct seccomp_data: nr at 0, arch at 4, args[i] at 16 + 8 i (low half first). */
#define SECCOMP_NR 0
#define SECCOMP_ARCH 4
#define SECCOMP_ARG0_LOW 16
#define SECCOMP_ARG1_LOW 24

static const u32 denied_calls[] = {
  321 /* bpf */,
  298 /* perf_event_open */,
  323 /* userfaultfd */,
  425 /* io_uring_setup */, 426 /* io_uring_enter */, 427 /* io_uring_register */,
  246 /* kexec_load */, 320 /* kexec_file_load */,
  175 /* init_module */, 313 /* finit_module */, 176 /* delete_module */,
  303 /* name_to_handle_at */, 304 /* open_by_handle_at */,
  308 /* setns */,
  248 /* add_key */, 250 /* keyctl */, 249 /* request_key */,
  169 /* reboot */, 167 /* swapon */, 168 /* swapoff */, 163 /* acct */,
  179 /* quotactl */, 443 /* quotactl_fd */,
  165 /* mount */, 166 /* umount2 */, 155 /* pivot_root */, 161 /* chroot */,
  428 /* open_tree */, 429 /* move_mount */, 430 /* fsopen */, 431 /* fsconfig */,
  432 /* fsmount */, 433 /* fspick */, 442 /* mount_setattr */,
  103 /* syslog */, 212 /* lookup_dcookie */, 153 /* vhangup */,
  172 /* iopl */, 173 /* ioperm */, 134 /* uselib */, 156 /* _sysctl */, 139 /* sysfs */,
  159 /* adjtimex */, 164 /* settimeofday */, 227 /* clock_settime */, 305 /* clock_adjtime */,
  237 /* mbind */, 238 /* set_mempolicy */, 256 /* migrate_pages */, 279 /* move_pages */,
  300 /* fanotify_init */,
};
#define NR_clone 56
#define NR_unshare 272
#define NR_clone3 435
#define NR_fallocate 285
#define MAX_FILTER 160

static int install_seccomp(void) {
  struct sock_filter f[MAX_FILTER];
  int n = 0;
#define STMT(c, value) (f[n].code = (u16)(c), f[n].jt = 0, f[n].jf = 0, f[n].k = (u32)(value), n++)
#define JUMP(c, value, t, e) (f[n].code = (u16)(c), f[n].jt = (u8)(t), f[n].jf = (u8)(e), f[n].k = (u32)(value), n++)
  /* Another ABI's system call numbers mean other calls: only x86_64's pass. */
  STMT(BPF_LD | BPF_W | BPF_ABS, SECCOMP_ARCH);
  JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
  STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
  STMT(BPF_LD | BPF_W | BPF_ABS, SECCOMP_NR);
  /* The x32 ABI reaches the same calls under other numbers. */
  JUMP(BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, 0, 1);
  STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
  for (u64 i = 0; i < sizeof denied_calls / sizeof denied_calls[0]; i++) {
    JUMP(BPF_JMP | BPF_JEQ | BPF_K, denied_calls[i], 0, 1);
    STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
  }
  /* The log's cap is RLIMIT_FSIZE, which fallocate checks only when it
   * extends a file's length: with FALLOC_FL_KEEP_SIZE it reserves blocks past
   * the cap, and FALLOC_FL_INSERT_RANGE grows a file without the check. Only
   * plain allocation (mode 0) passes; EOPNOTSUPP is what a filesystem answers
   * for a mode it lacks, so programs fall back to writing. */
  JUMP(BPF_JMP | BPF_JEQ | BPF_K, NR_fallocate, 0, 4);
  STMT(BPF_LD | BPF_W | BPF_ABS, SECCOMP_ARG1_LOW);
  JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0);
  STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EOPNOTSUPP);
  STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  /* clone3 passes its flags in memory, out of a filter's reach: ENOSYS makes
   * libc fall back to clone, whose flags can be checked. */
  JUMP(BPF_JMP | BPF_JEQ | BPF_K, NR_clone3, 0, 1);
  STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
  /* No new namespaces of any kind, the user namespace above all. */
  JUMP(BPF_JMP | BPF_JEQ | BPF_K, NR_clone, 1, 0);
  JUMP(BPF_JMP | BPF_JEQ | BPF_K, NR_unshare, 0, 3);
  STMT(BPF_LD | BPF_W | BPF_ABS, SECCOMP_ARG0_LOW);
  JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_NAMESPACES, 0, 1);
  STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
  STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
#undef STMT
#undef JUMP
  struct sock_fprog prog;
  prog.len = (u16)n;
  prog.filter = f;
  return (int)sys(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

/* ── the command: PID 2 of the job ─────────────────────────────────────── */

struct command_fds {
  int sync;   /* read end: init writes one byte once the id maps are in place */
  int report; /* write end, close-on-exec: EOF means execve worked */
};

/* Tells init which step failed, then ends. */
static void command_fail(int report_fd, enum step step, int err) {
  int message[2];
  message[0] = (int)step;
  message[1] = err;
  write_all(report_fd, (const char *)message, sizeof message);
  sys(SYS_exit_group, 127);
}

#define COMMAND_CHECK(fds, call, step) \
  do { \
    if ((call) < 0) command_fail((fds)->report, (step), last_errno()); \
  } while (0)

/* Whether an execve error means "no such program here" rather than "this program cannot run". */
static int not_found(int err) { return err == ENOENT || err == ENOTDIR || err == ELOOP || err == ENAMETOOLONG; }

/* execvp's search, as the job's user in the job's view: a path hidden from
 * the job is missing for it, whatever exists on the host. */
static void exec_program(const struct command_fds *fds, const struct launch_strings *str) {
  const char *program = str->argv[0];
  int has_slash = 0;
  for (const char *p = program; *p; p++) has_slash |= *p == '/';
  if (has_slash) {
    sys(SYS_execve, program, str->argv, str->envp);
    int err = last_errno();
    command_fail(fds->report, not_found(err) || err == EACCES ? STEP_RESOLVE : STEP_EXEC, err);
  }
  char candidate[4096];
  u64 name_len = strlen_(program);
  int saw_eacces = 0;
  const char *dir = str->search_path;
  for (;;) {
    const char *end = dir;
    while (*end && *end != ':') end++;
    u64 dir_len = (u64)(end - dir);
    if (dir_len > 0 && dir_len + 1 + name_len + 1 <= sizeof candidate) {
      u64 n = 0;
      for (u64 i = 0; i < dir_len; i++) candidate[n++] = dir[i];
      candidate[n++] = '/';
      for (u64 i = 0; i <= name_len; i++) candidate[n++] = program[i];
      sys(SYS_execve, candidate, str->argv, str->envp);
      int err = last_errno();
      if (err == EACCES) saw_eacces = 1;
      else if (!not_found(err)) command_fail(fds->report, STEP_EXEC, err);
    }
    if (!*end) break;
    dir = end + 1;
  }
  command_fail(fds->report, STEP_RESOLVE, saw_eacces ? EACCES : ENOENT);
}

/* Never returns. */
static void run_command(const struct launch_config *cfg, const struct launch_strings *str, const struct command_fds *fds) {
  /* Wait for init to map this user namespace's ids onto the tenant's range. */
  char go = 0;
  long got;
  do got = sys(SYS_read, fds->sync, &go, 1);
  while (got < 0 && last_errno() == EINTR);
  if (got != 1) command_fail(fds->report, STEP_ID_MAP, got < 0 ? last_errno() : EINVAL);
  sys(SYS_close, fds->sync);
  /* Only stdio goes on to the program (the report pipe closes on exec). */
  sys(SYS_close, INIT_DIR_FD);
  sys(SYS_close, INIT_READY_FD);

  /* Its own process group, so that init can signal the whole pipeline. */
  COMMAND_CHECK(fds, sys(SYS_setpgid, 0, 0), STEP_SETPGID);
  COMMAND_CHECK(fds, sys(SYS_setgroups, 0, 0), STEP_SETGROUPS);
  COMMAND_CHECK(fds, sys(SYS_setresgid, cfg->gid, cfg->gid, cfg->gid), STEP_SETGID);
  if (cfg->uid != 0) {
    /* Nothing the program runs may ever regain a capability, even inside
     * its own user namespace. */
    for (int cap = 0; cap <= CAP_LAST_CAP_MAX; cap++) {
      if (sys(SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && last_errno() != EINVAL)
        command_fail(fds->report, STEP_CAPABILITIES, last_errno());
    }
  }
  COMMAND_CHECK(fds, sys(SYS_setresuid, cfg->uid, cfg->uid, cfg->uid), STEP_SETUID);
  if (cfg->uid != 0) {
    /* The process came into its namespace as host root, which is not the
     * namespace's root, so setresuid did not clear its capabilities. */
    struct cap_header header;
    struct cap_data none[2];
    header.version = LINUX_CAPABILITY_VERSION_3;
    header.pid = 0;
    zero(none, sizeof none);
    COMMAND_CHECK(fds, sys(SYS_capset, &header, none), STEP_CAPABILITIES);
  }
  /* A session keyring of its own, so no key is shared with anything else. */
  COMMAND_CHECK(fds, sys(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, 0), STEP_KEYRING);
  /* The log cap: a write past it fails with EFBIG instead of killing the program. */
  struct kernel_sigaction ignore;
  zero(&ignore, sizeof ignore);
  ignore.handler = SIG_IGN;
  COMMAND_CHECK(fds, sys(SYS_rt_sigaction, SIGXFSZ, &ignore, 0, SIGSET_BYTES), STEP_SIGNALS);
  if (cfg->log_limit > 0) COMMAND_CHECK(fds, lower_rlimit(RLIMIT_FSIZE, (u64)cfg->log_limit), STEP_RLIMIT);
  sys(SYS_umask, 022);
  COMMAND_CHECK(fds, sys(SYS_chdir, str->cwd), STEP_CHDIR);
  COMMAND_CHECK(fds, sys(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), STEP_NO_NEW_PRIVS);
  u64 none = 0;
  COMMAND_CHECK(fds, sys(SYS_rt_sigprocmask, SIG_SETMASK, &none, 0, SIGSET_BYTES), STEP_SIGNALS);
  /* Last: from here on the filter applies to this code too. */
  COMMAND_CHECK(fds, install_seccomp(), STEP_SECCOMP);
  exec_program(fds, str);
}

/* "0 <base> <count>\n" into /proc/<pid>/<file>. init may write any range:
 * it holds CAP_SETUID and CAP_SETGID in the host's user namespace. */
static int write_id_map(long pid, const char *file, const struct launch_config *cfg) {
  char path[64];
  int n = 0;
  put_str(path, sizeof path, &n, "/proc/");
  put_long(path, sizeof path, &n, pid);
  put_str(path, sizeof path, &n, "/");
  put_str(path, sizeof path, &n, file);
  path[n] = 0;
  char map[64];
  int m = 0;
  put_str(map, sizeof map, &m, "0 ");
  put_long(map, sizeof map, &m, cfg->host_id_base);
  put_str(map, sizeof map, &m, " ");
  put_long(map, sizeof map, &m, cfg->id_count);
  map[m++] = '\n';
  int fd = (int)sys(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CLOEXEC, 0);
  if (fd < 0) return -1;
  int rc = write_all(fd, map, (u64)m);
  int err = last_errno();
  sys(SYS_close, fd);
  g_errno = err;
  return rc;
}

/* PID 1 of the job. Never returns. */
static void run_init(const struct launch_config *cfg, const struct launch_strings *str) {
  int dir_fd = (int)cfg->dir_fd;
  g_ready_fd = -1;

  /* Signals were blocked by the parent before clone3; drop Bun's handlers,
   * which point at code that must never run here. */
  /* Field by field: an aggregate initialiser makes TinyCC call memset, which
   * is gone once init has shed jobberd's mappings. */
  struct kernel_sigaction dfl;
  zero(&dfl, sizeof dfl);
  for (int sig = 1; sig <= NSIG; sig++) {
    if (sig != SIGKILL && sig != SIGSTOP) CHECK(dir_fd, sys(SYS_rt_sigaction, sig, &dfl, 0, SIGSET_BYTES), STEP_SIGNALS);
  }
  /* A session of its own: a terminal's Ctrl+C aimed at jobberd must not reach jobs. */
  CHECK(dir_fd, sys(SYS_setsid), STEP_SETSID);
  sys(SYS_umask, 0);

  /* cgroup v1 controllers (limits on a v1-hybrid host): writing 0 moves the
   * writer itself. Done before the command exists, so it is born limited. */
  if (cfg->v1_count > MAX_V1_CONTROLLERS) init_fail(dir_fd, STEP_JOIN_CGROUP_V1, EINVAL);
  for (int i = 0; i < cfg->v1_count; i++) {
    CHECK(dir_fd, write_all((int)cfg->v1_fds[i], "0", 1), STEP_JOIN_CGROUP_V1);
  }
  /* Now in all its cgroups: the job sees them as its root. */
  CHECK(dir_fd, sys(SYS_unshare, CLONE_NEWCGROUP), STEP_UNSHARE_CGROUP);

  /* The descriptors init keeps go to fixed places: the job directory to 3,
   * the ready pipe to 4, the log above them until it becomes stdout. Moved
   * out of the way first, so that no dup3 lands on another of them. */
  long dir_high = sys(SYS_fcntl, dir_fd, F_DUPFD_CLOEXEC, FIRST_FREE_FD);
  long ready_high = sys(SYS_fcntl, cfg->ready_fd, F_DUPFD_CLOEXEC, FIRST_FREE_FD);
  long log_fd = sys(SYS_fcntl, cfg->log_fd, F_DUPFD_CLOEXEC, FIRST_FREE_FD);
  if (dir_high < 0 || ready_high < 0 || log_fd < 0) init_fail(dir_fd, STEP_CLOSE_FDS, last_errno());
  CHECK(dir_fd, sys(SYS_dup3, dir_high, INIT_DIR_FD, 0), STEP_CLOSE_FDS);
  dir_fd = INIT_DIR_FD;
  CHECK(dir_fd, sys(SYS_dup3, ready_high, INIT_READY_FD, 0), STEP_CLOSE_FDS);
  g_ready_fd = INIT_READY_FD;

  build_view(dir_fd, str);
  CHECK(dir_fd, bring_loopback_up(), STEP_LOOPBACK_UP);
  CHECK(dir_fd, sys(SYS_sethostname, str->hostname, strlen_(str->hostname)), STEP_SETHOSTNAME);

  /* stdin from /dev/null, stdout and stderr to the log. */
  int null_fd = (int)sys(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY, 0);
  if (null_fd < 0) init_fail(dir_fd, STEP_STDIO, last_errno());
  if (null_fd != 0) {
    CHECK(dir_fd, sys(SYS_dup3, null_fd, 0, 0), STEP_STDIO);
    sys(SYS_close, null_fd);
  }
  CHECK(dir_fd, sys(SYS_dup3, log_fd, 1, 0), STEP_STDIO);
  CHECK(dir_fd, sys(SYS_dup3, log_fd, 2, 0), STEP_STDIO);
  CHECK(dir_fd, sys(SYS_close_range, INIT_READY_FD + 1, ~0U, 0), STEP_CLOSE_FDS);
  set_rlimits(dir_fd, cfg);

  /* Two pipes to the command: sync (init → command: the id maps are in
   * place) and report (command → init, close-on-exec: EOF means execve
   * worked, eight bytes are the failed step and its errno). */
  int sync[2], report[2];
  CHECK(dir_fd, sys(SYS_pipe2, sync, O_CLOEXEC), STEP_PIPE);
  CHECK(dir_fd, sys(SYS_pipe2, report, O_CLOEXEC), STEP_PIPE);
  /* The user namespace is created with the tenant's host id as its owner:
   * the kernel charges per-user counts (inotify instances, pending
   * signals, message queues, user namespaces) up the namespace tree to
   * the owner, so owned by root they would be one pool for every tenant
   * and the daemon. Only the effective ids change: init stays root. */
  CHECK(dir_fd, sys(SYS_setresgid, -1, cfg->host_id_base, -1), STEP_OWNER);
  CHECK(dir_fd, sys(SYS_setresuid, -1, cfg->host_id_base, -1), STEP_OWNER);
  long command = sys(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
  int clone_errno = last_errno();
  if (command == 0) {
    struct command_fds fds;
    sys(SYS_close, sync[1]);
    sys(SYS_close, report[0]);
    fds.sync = sync[0];
    fds.report = report[1];
    run_command(cfg, str, &fds);
  }
  /* Back to root (its saved ids), which restores its capabilities. */
  CHECK(dir_fd, sys(SYS_setresuid, -1, 0, -1), STEP_OWNER);
  CHECK(dir_fd, sys(SYS_setresgid, -1, 0, -1), STEP_OWNER);
  if (command < 0) init_fail(dir_fd, STEP_FORK, clone_errno);
  sys(SYS_close, sync[0]);
  sys(SYS_close, report[1]);
  if (write_id_map(command, "uid_map", cfg) < 0 || write_id_map(command, "gid_map", cfg) < 0) {
    int err = last_errno();
    sys(SYS_kill, command, SIGKILL);
    init_fail(dir_fd, STEP_ID_MAP, err);
  }
  CHECK(dir_fd, write_all(sync[1], "g", 1), STEP_ID_MAP);
  sys(SYS_close, sync[1]);

  int failure[2];
  long got;
  do got = sys(SYS_read, report[0], failure, sizeof failure);
  while (got < 0 && last_errno() == EINTR);
  sys(SYS_close, report[0]);
  if (got == sizeof failure && failure[0] >= 0 && failure[0] <= STEP_EXEC) init_fail(dir_fd, (enum step)failure[0], failure[1]);
  report_ready("ok\n", 3);

  /* Reap every orphan, forward termination signals to the command's process
   * group, and leave when the command itself is gone. */
  /* Built bit by bit: an initialised array would make TinyCC call memcpy,
   * which init no longer has. */
  u64 waited = 0;
  waited |= SIGBIT(SIGCHLD) | SIGBIT(SIGTERM) | SIGBIT(SIGINT) | SIGBIT(SIGHUP);
  waited |= SIGBIT(SIGQUIT) | SIGBIT(SIGUSR1) | SIGBIT(SIGUSR2);
  char info[128]; /* siginfo_t */
  for (;;) {
    int sig = (int)sys(SYS_rt_sigtimedwait, &waited, info, 0, SIGSET_BYTES);
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
      char line[48];
      if (WTERMSIG(status) == 0) {
        record_exit(dir_fd, line, exit_line(line, sizeof line, "exited", WEXITSTATUS(status)));
        sys(SYS_exit_group, WEXITSTATUS(status));
      }
      record_exit(dir_fd, line, exit_line(line, sizeof line, "signaled", WTERMSIG(status)));
      sys(SYS_exit_group, 128 + WTERMSIG(status));
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
/* The top of user space with 4-level page tables (47-bit addresses,
 * arch/x86/include/asm/page_64_types.h); unmapping past a 5-level
 * layout's larger space is not needed: nothing of jobberd lives there. */
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
             vec_bytes(str->masked_dirs) + vec_bytes(str->masked_files) + round_up(strlen_(str->search_path) + 1, 16) +
             round_up(strlen_(str->cwd) + 1, 16) + round_up(strlen_(str->hostname) + 1, 16);
  u64 size = SHED_STACK + round_up(data, PAGE);
  long region = sys(SYS_mmap, 0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region < 0) run_init(cfg, str);
  char *cursor = (char *)region + SHED_STACK;
  struct shed_args *a = (struct shed_args *)bump(&cursor, sizeof(struct shed_args));
  a->cfg = *cfg;
  a->str.argv = copy_vec(&cursor, str->argv);
  a->str.envp = copy_vec(&cursor, str->envp);
  a->str.masked_dirs = copy_vec(&cursor, str->masked_dirs);
  a->str.masked_files = copy_vec(&cursor, str->masked_files);
  a->str.search_path = copy_str(&cursor, str->search_path);
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
 * out[0], a pidfd for it in out[1] and the read end of its ready pipe in
 * out[2]; on failure returns -errno. Never returns in the child.
 */
int jobber_launch(const struct launch_config *params, const struct launch_strings *str, int *out) {
  struct launch_config cfg = *params;
  int ready[2];
  if (sys(SYS_pipe2, ready, O_CLOEXEC) < 0) return -last_errno();
  cfg.ready_fd = ready[1];

  u64 all = ~0UL, old;
  /* Block every signal across clone3 so the child starts with none pending
   * delivery to handlers it must not run. */
  if (sys(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, SIGSET_BYTES) < 0) {
    int err = last_errno();
    sys(SYS_close, ready[0]);
    sys(SYS_close, ready[1]);
    return -err;
  }
  int pidfd = -1;
  struct clone_args args;
  zero(&args, sizeof args);
  args.flags = CLONE_PIDFD | CLONE_INTO_CGROUP | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWUTS |
               CLONE_NEWIPC;
  args.pidfd = (u64)&pidfd;
  /* No exit signal: Bun's SIGCHLD-driven reaping never sees the job; the
   * daemon reaps it through its pidfd. */
  args.exit_signal = 0;
  args.cgroup = (u64)cfg.cgroup_fd;

  long pid = sys(SYS_clone3, &args, sizeof args);
  if (pid == 0) shed_and_run_init(&cfg, str);
  int err = last_errno();
  /* Restoring the daemon's own mask cannot fail with a valid set. */
  sys(SYS_rt_sigprocmask, SIG_SETMASK, &old, 0, SIGSET_BYTES);
  sys(SYS_close, ready[1]);
  if (pid < 0) {
    sys(SYS_close, ready[0]);
    return -err;
  }
  out[0] = (int)pid;
  out[1] = pidfd;
  out[2] = ready[0];
  return 0;
}

/* The size of struct launch_config, which launch.ts mirrors. */
int jobber_config_size(void) { return (int)sizeof(struct launch_config); }

/* The start of siginfo_t for SIGCHLD (include/uapi/asm-generic/siginfo.h). */
struct siginfo_head {
  int si_signo, si_errno, si_code, pad;
  int si_pid, si_uid;
  long reserved;
};

/* Reaps init once it has exited: 0 when reaped, 1 while it runs, -errno. */
int jobber_reap(int pidfd) {
  struct siginfo_head info[8]; /* siginfo_t is 128 bytes */
  zero(info, sizeof info);
  if (sys(SYS_waitid, P_PIDFD, pidfd, info, WEXITED | WNOHANG | WALL, 0) < 0) return -last_errno();
  /* si_pid is 0 when nothing has exited yet. */
  return info[0].si_pid == 0 ? 1 : 0;
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
