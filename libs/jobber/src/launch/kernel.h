/*
 * The kernel's system call interface, as the launcher uses it: raw system
 * calls (no libc: see shed.c), their numbers, flags and structures. Each
 * group names the uapi header it comes from (x86_64).
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
#define SYS_poll 7
#define SYS_mmap 9
#define SYS_munmap 11
#define SYS_rt_sigaction 13
#define SYS_rt_sigprocmask 14
#define SYS_ioctl 16
#define SYS_fcntl 72
#define SYS_socket 41
#define SYS_sendto 44
#define SYS_sendmsg 46
#define SYS_recvmsg 47
#define SYS_socketpair 53
#define SYS_setsockopt 54
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
#define SYS_getpid 39
#define SYS_getppid 110
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
#define SYS_signalfd4 289
#define SYS_prlimit64 302
#define SYS_renameat2 316
#define SYS_seccomp 317
#define SYS_rseq 334
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
#define P_ALL 0
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
#define ECHILD 10
#define EAGAIN 11
#define EPIPE 32
#define EPROTO 71
#define ETIMEDOUT 110
#define EMSGSIZE 90

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
#define AF_UNIX 1
#define AF_INET 2
#define SOCK_STREAM 1
#define SOL_SOCKET 1
#define SO_SNDTIMEO 21
#define SO_RCVTIMEO 20
#define SCM_RIGHTS 1
#define MSG_NOSIGNAL 0x4000
#define MSG_CMSG_CLOEXEC 0x40000000
#define SOCK_DGRAM 2
#define SIOCGIFFLAGS 0x8913
#define SIOCSIFFLAGS 0x8914
#define IFF_UP 1

/* include/uapi/linux/mman.h */
/* include/uapi/asm-generic/poll.h, linux/signalfd.h */
#define POLLIN 0x1
#define POLLERR 0x8
#define POLLHUP 0x10
#define SFD_NONBLOCK 04000

#define PROT_READ 1
#define PROT_WRITE 2
#define MAP_PRIVATE 0x02
#define MAP_ANONYMOUS 0x20

/* include/uapi/linux/prctl.h, capability.h, keyctl.h, asm-generic/resource.h */
#define PR_SET_PDEATHSIG 1
#define PR_SET_NAME 15
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

struct timeval {
  long sec, usec;
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

/* include/linux/socket.h, uapi/linux/uio.h, uapi/asm-generic/poll.h */
struct iovec {
  void *base;
  u64 len;
};
struct msghdr {
  void *name;
  int namelen;
  struct iovec *iov;
  u64 iovlen;
  void *control;
  u64 controllen;
  unsigned flags;
};
struct cmsghdr {
  u64 len;
  int level, type;
};
#define CMSG_DATA_OFFSET sizeof(struct cmsghdr)
#define CMSG_SPACE(bytes) (sizeof(struct cmsghdr) + (((bytes) + 7) & ~7UL))
#define CMSG_LEN(bytes) (sizeof(struct cmsghdr) + (bytes))
struct pollfd {
  int fd;
  short events, revents;
};

/* The start of siginfo_t (include/uapi/asm-generic/siginfo.h), which is
 * 128 bytes, as waitid fills it for a child. */
#define SIGINFO_BYTES 128
struct siginfo_head {
  int si_signo, si_errno, si_code, pad;
  int si_pid, si_uid;
  long reserved;
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

static u64 round_up(u64 n, u64 to) { return (n + to - 1) & ~(to - 1); }

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

/* Reads exactly len bytes: 0, or -1 with g_errno set (EPIPE at end of file). */
static int read_all(int fd, char *buf, u64 len) {
  while (len > 0) {
    long n = sys(SYS_read, fd, buf, len);
    if (n < 0) {
      if (last_errno() == EINTR) continue;
      return -1;
    }
    if (n == 0) {
      g_errno = EPIPE;
      return -1;
    }
    buf += n;
    len -= (u64)n;
  }
  return 0;
}
