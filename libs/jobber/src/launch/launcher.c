/*
 * The job launcher: everything that must happen between clone and execve.
 *
 * Bun is multi-threaded, so a child cannot be set up from JavaScript after a
 * fork (the same reason runc has its C nsexec). These files are compiled at
 * run time by TinyCC through bun:ffi's `cc`, as one translation unit (this
 * file includes the others). They include no system headers and do not use
 * libc: they make raw system calls, which is all a child of a
 * multi-threaded process may safely do, and all a process that has unmapped
 * libc can do (shed.c).
 *
 *   kernel.h    system call entry, numbers, flags, structures
 *   job.c       the job's init (PID 1) and the command (PID 2) up to execve
 *   seccomp.c   the command's system call filter
 *   shed.c      how the launcher process lets go of the daemon's memory
 *   launcher.c  the launcher process, its protocol, and the functions the
 *               daemon calls through FFI
 *
 * x86_64 only: the system call entry and two helpers are assembly.
 *
 * Processes:
 *
 *   jobberd ──clone3, once──▶ launcher   shed of jobberd's memory; serves
 *                              │         launch requests on a socketpair
 *                              └──clone3──▶ init   PID 1 of new PID/mount/net/
 *                                           │      UTS/IPC namespaces, born in
 *                                           │      the job's cgroup, host root;
 *                                           │      builds the job's view
 *                                           └──clone(CLONE_NEWUSER)──▶ command
 *                                                  PID 2, in a user namespace
 *                                                  mapped to the tenant's host
 *                                                  range; drops to the run-as
 *                                                  user, no_new_privs, seccomp,
 *                                                  execve
 *
 * The launcher exists so that each job is cloned from a process of a few
 * kilobytes instead of from the daemon: no page tables to copy, no
 * copy-on-write faults after. It answers each request with init's PID, a
 * pidfd and the read end of the job's ready pipe, passed with SCM_RIGHTS,
 * and reaps the inits it made. It dies with jobberd (PDEATHSIG); jobs do
 * not: their inits are then reparented to the host's init, and the next
 * jobberd adopts them. If it dies alone, jobberd starts another.
 *
 * init tells the daemon, through the ready pipe, whether the command was
 * executed ("ok") or which step failed ("failed <step> <errno>"), and holds
 * the pipe open until it exits: the pipe's end of file is the end of the
 * job. It records how the command ended in the job directory, so the daemon
 * can die and come back without losing it.
 */

#include "kernel.h"
#include "seccomp.c"
#include "job.c"
#include "shed.c"

/* ── the protocol between jobberd and the launcher ─────────────────────── */

/* A request: this header, with the job's descriptors as SCM_RIGHTS (in
 * order: cgroup v2 directory, log, job directory, then each cgroup v1
 * cgroup.procs), then `body_bytes` of body: a struct launch_config (its
 * descriptor fields are ignored) and seven string groups, each a u32 count
 * followed by that many NUL-terminated strings: argv, envp, masked_dirs,
 * masked_files, then search_path, cwd and hostname (one string each). */
#define REQUEST_MAGIC 0x6a6f6231U /* "job1" */
#define MAX_BODY_BYTES (8UL << 20)
#define FIXED_FDS 3
#define MAX_REQUEST_FDS (FIXED_FDS + MAX_V1_CONTROLLERS)
struct request_header {
  u32 magic;
  u32 body_bytes;
  u32 fd_count;
  u32 reserved;
};

/* The answer: 0 and init's host PID, with its pidfd and the ready pipe's
 * read end as SCM_RIGHTS; or -errno and no descriptors. */
struct reply {
  int error;
  int pid;
};

/* ── the launcher process ──────────────────────────────────────────────── */

static int send_reply(int sock, int error, int pid, int pidfd, int ready_fd) {
  struct reply answer;
  answer.error = error;
  answer.pid = pid;
  struct iovec iov;
  iov.base = &answer;
  iov.len = sizeof answer;
  u64 control[CMSG_SPACE(2 * sizeof(int)) / 8];
  zero(control, sizeof control);
  struct msghdr msg;
  zero(&msg, sizeof msg);
  msg.iov = &iov;
  msg.iovlen = 1;
  if (error == 0) {
    struct cmsghdr *cmsg = (struct cmsghdr *)control;
    cmsg->len = CMSG_LEN(2 * sizeof(int));
    cmsg->level = SOL_SOCKET;
    cmsg->type = SCM_RIGHTS;
    int *fds = (int *)((char *)control + CMSG_DATA_OFFSET);
    fds[0] = pidfd;
    fds[1] = ready_fd;
    msg.control = control;
    msg.controllen = sizeof control;
  }
  return sys(SYS_sendmsg, sock, &msg, MSG_NOSIGNAL) == sizeof answer ? 0 : -1;
}

/* Points `slots` at `count` NUL-terminated strings starting at *cursor; 0 or -1 if the body ends first. */
static int take_strings(char **cursor, char *end, char **slots, u32 count) {
  for (u32 i = 0; i < count; i++) {
    char *s = *cursor;
    while (*cursor < end && **cursor) (*cursor)++;
    if (*cursor >= end) return -1;
    (*cursor)++;
    slots[i] = s;
  }
  slots[count] = 0;
  return 0;
}

static int take_count(char **cursor, char *end, u32 *count) {
  if (end - *cursor < 4) return -1;
  u8 *p = (u8 *)*cursor;
  *count = (u32)p[0] | (u32)p[1] << 8 | (u32)p[2] << 16 | (u32)p[3] << 24;
  *cursor += 4;
  return 0;
}

/* Decodes a request body into cfg and str; pointers go into `slots`, which
 * has room for one per byte of body (every string has at least its NUL)
 * plus one NULL per group. */
static int decode_body(char *body, u64 bytes, struct launch_config *cfg, struct launch_strings *str, char **slots) {
  if (bytes < sizeof *cfg) return -1;
  char *src = body;
  char *dst = (char *)cfg;
  for (u64 i = 0; i < sizeof *cfg; i++) dst[i] = src[i];
  char *cursor = body + sizeof *cfg;
  char *end = body + bytes;
  char **groups[7];
  u32 count;
  for (int g = 0; g < 7; g++) {
    if (take_count(&cursor, end, &count) < 0) return -1;
    /* The last three are single strings. */
    if (g >= 4 && count != 1) return -1;
    if ((u64)count > (u64)(end - cursor)) return -1;
    if (take_strings(&cursor, end, slots, count) < 0) return -1;
    groups[g] = slots;
    slots += count + 1;
  }
  if (groups[0][0] == 0) return -1;
  str->argv = groups[0];
  str->envp = groups[1];
  str->masked_dirs = groups[2];
  str->masked_files = groups[3];
  str->search_path = groups[4][0];
  str->cwd = groups[5][0];
  str->hostname = groups[6][0];
  return 0;
}

static void close_fds(const int *fds, int count) {
  for (int i = 0; i < count; i++) sys(SYS_close, fds[i]);
}

/* Receives exactly `len` bytes into buf; the descriptors that come with
 * them (SCM_RIGHTS) go to fds, up to max_fds (any beyond are closed).
 * Returns how many came, or -1 with g_errno set (EPIPE at end of file). */
static int receive_with_fds(int sock, void *buf, u64 len, int *fds, int max_fds) {
  struct iovec iov;
  iov.base = buf;
  iov.len = len;
  u64 control[CMSG_SPACE(MAX_REQUEST_FDS * sizeof(int)) / 8 + 1];
  zero(control, sizeof control);
  struct msghdr msg;
  zero(&msg, sizeof msg);
  msg.iov = &iov;
  msg.iovlen = 1;
  msg.control = control;
  msg.controllen = sizeof control;
  long got;
  do got = sys(SYS_recvmsg, sock, &msg, MSG_CMSG_CLOEXEC);
  while (got < 0 && last_errno() == EINTR);
  if (got < 0) return -1;
  if (got == 0) {
    g_errno = EPIPE;
    return -1;
  }
  int count = 0;
  struct cmsghdr *cmsg = (struct cmsghdr *)control;
  if (msg.controllen >= sizeof(struct cmsghdr) && cmsg->level == SOL_SOCKET && cmsg->type == SCM_RIGHTS) {
    int *passed = (int *)((char *)control + CMSG_DATA_OFFSET);
    int n = (int)((cmsg->len - CMSG_DATA_OFFSET) / sizeof(int));
    for (int i = 0; i < n; i++) {
      if (count < max_fds) fds[count++] = passed[i];
      else sys(SYS_close, passed[i]);
    }
  }
  /* A stream socket may hand over the rest in pieces. */
  if ((u64)got < len && read_all(sock, (char *)buf + got, len - (u64)got) < 0) {
    close_fds(fds, count);
    return -1;
  }
  return count;
}

/* Serves one request: 0 when answered, -1 when the daemon is gone or broke the protocol. */
static int serve_one(int sock) {
  struct request_header header;
  int fds[MAX_REQUEST_FDS];
  int fd_count = receive_with_fds(sock, &header, sizeof header, fds, MAX_REQUEST_FDS);
  if (fd_count < 0) return -1;
  if (header.magic != REQUEST_MAGIC || header.body_bytes > MAX_BODY_BYTES || header.fd_count != (u32)fd_count ||
      fd_count < FIXED_FDS) {
    close_fds(fds, fd_count);
    return -1;
  }
  u64 body_size = round_up(header.body_bytes + 1, PAGE);
  u64 slots_size = round_up(((u64)header.body_bytes + 8) * sizeof(char *), PAGE);
  long body = sys(SYS_mmap, 0, body_size + slots_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (body < 0) {
    int err = last_errno();
    close_fds(fds, fd_count);
    /* The body is still in the socket: without room to read it, the stream cannot go on. */
    send_reply(sock, -err, 0, -1, -1);
    return -1;
  }
  int rc = read_all(sock, (char *)body, header.body_bytes);
  if (rc < 0) {
    close_fds(fds, fd_count);
    sys(SYS_munmap, body, body_size + slots_size);
    return -1;
  }
  struct launch_config cfg;
  struct launch_strings str;
  int error = 0;
  if (decode_body((char *)body, header.body_bytes, &cfg, &str, (char **)((char *)body + body_size)) < 0 ||
      cfg.v1_count != fd_count - FIXED_FDS) {
    error = -EPROTO;
  }
  /* Element by element: an initialiser would make TinyCC call memset, which the launcher no longer has. */
  int ready[2];
  ready[0] = ready[1] = -1;
  int pidfd = -1;
  long pid = -1;
  if (error == 0 && sys(SYS_pipe2, ready, O_CLOEXEC) < 0) error = -last_errno();
  if (error == 0) {
    cfg.cgroup_fd = fds[0];
    cfg.log_fd = fds[1];
    cfg.dir_fd = fds[2];
    for (int i = 0; i < cfg.v1_count; i++) cfg.v1_fds[i] = fds[FIXED_FDS + i];
    cfg.ready_fd = ready[1];
    struct clone_args args;
    zero(&args, sizeof args);
    args.flags = CLONE_PIDFD | CLONE_INTO_CGROUP | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWUTS |
                 CLONE_NEWIPC;
    args.pidfd = (u64)&pidfd;
    args.exit_signal = SIGCHLD;
    args.cgroup = (u64)cfg.cgroup_fd;
    pid = sys(SYS_clone3, &args, sizeof args);
    if (pid == 0) run_init(&cfg, &str);
    if (pid < 0) error = -last_errno();
    sys(SYS_close, ready[1]);
  }
  close_fds(fds, fd_count);
  sys(SYS_munmap, body, body_size + slots_size);
  rc = send_reply(sock, error, (int)pid, pidfd, ready[0]);
  if (pidfd >= 0) sys(SYS_close, pidfd);
  if (ready[0] >= 0) sys(SYS_close, ready[0]);
  return rc;
}

/* Collects every init that has exited. */
static void reap_children(void) {
  for (;;) {
    struct siginfo_head info[SIGINFO_BYTES / sizeof(struct siginfo_head)];
    zero(info, sizeof info);
    if (sys(SYS_waitid, P_ALL, 0, info, WEXITED | WNOHANG | WALL, 0) < 0) return;
    if (info[0].si_pid == 0) return;
  }
}

/* The launcher's loop: requests on the socket, SIGCHLD on a signalfd. Never returns. */
static void serve(int sock) {
  u64 child = SIGBIT(SIGCHLD);
  int signals = (int)sys(SYS_signalfd4, -1, &child, SIGSET_BYTES, SFD_NONBLOCK | O_CLOEXEC);
  for (;;) {
    struct pollfd ready[2];
    ready[0].fd = sock;
    ready[0].events = POLLIN;
    ready[0].revents = 0;
    ready[1].fd = signals;
    ready[1].events = POLLIN;
    ready[1].revents = 0;
    /* Without a signalfd, reap after every request instead (inits exit later: they linger as zombies until then). */
    long n = sys(SYS_poll, ready, signals >= 0 ? 2 : 1, -1);
    if (n < 0) {
      if (last_errno() == EINTR) continue;
      sys(SYS_exit_group, 1);
    }
    if (ready[1].revents & POLLIN) {
      char drained[SIGINFO_BYTES];
      while (sys(SYS_read, signals, drained, sizeof drained) > 0) {
      }
    }
    reap_children();
    if (ready[0].revents & POLLIN) {
      if (serve_one(sock) < 0) sys(SYS_exit_group, 0);
    } else if (ready[0].revents & (POLLHUP | POLLERR)) {
      /* jobberd closed its end: nothing more to launch. */
      sys(SYS_exit_group, 0);
    }
  }
}

/* The launcher process's first steps. Never returns. */
static void run_launcher(int sock, long daemon_pid) {
  /* Any failure here ends the launcher: jobberd sees its socket close and
   * reports the start that needed it as failed. */
  /* Bun's handlers point at code that must never run here (every signal is
   * blocked, as the parent left them, and stays so: SIGCHLD comes through a
   * signalfd). Element by element: no aggregate initialisers (job.c). */
  struct kernel_sigaction dfl;
  zero(&dfl, sizeof dfl);
  for (int sig = 1; sig <= NSIG; sig++) {
    if (sig != SIGKILL && sig != SIGSTOP && sys(SYS_rt_sigaction, sig, &dfl, 0, SIGSET_BYTES) < 0)
      sys(SYS_exit_group, 1);
  }
  /* Die with jobberd; if it is already gone, do not start. */
  if (sys(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || sys(SYS_getppid) != daemon_pid)
    sys(SYS_exit_group, 1);
  /* A name to be found by in ps; nothing depends on it. */
  sys(SYS_prctl, PR_SET_NAME, "jobber-launcher", 0, 0, 0);
  if (sock != 0) {
    if (sys(SYS_dup3, sock, 0, 0) < 0) sys(SYS_exit_group, 1);
    sock = 0;
  }
  /* Nothing of jobberd's stays open here, so nothing leaks into jobs. */
  if (sys(SYS_close_range, 1, ~0U, 0) < 0) sys(SYS_exit_group, 1);
  shed_and_serve(sock);
}

/* ── what jobberd calls through FFI ────────────────────────────────────── */

/* The size of struct launch_config, which launch.ts mirrors. */
int jobber_config_size(void) { return (int)sizeof(struct launch_config); }

/*
 * Starts the launcher process; jobberd waits for it at most patience_ms per
 * request (then the request fails with ETIMEDOUT). On success returns 0 and stores its PID in
 * out[0], a pidfd for it in out[1] and jobberd's end of the socket in
 * out[2]; on failure returns -errno.
 */
int jobber_launcher_start(int *out, int patience_ms) {
  int pair[2];
  if (sys(SYS_socketpair, AF_UNIX, SOCK_STREAM | O_CLOEXEC, 0, pair) < 0) return -last_errno();
  /* jobberd's end gives up on a launcher that neither reads nor answers
   * (stopped, wedged): the call then fails with EAGAIN and jobberd replaces
   * it, instead of waiting with its event loop blocked. */
  struct timeval patience;
  patience.sec = patience_ms / 1000;
  patience.usec = (long)(patience_ms % 1000) * 1000;
  if (sys(SYS_setsockopt, pair[0], SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof patience) < 0 ||
      sys(SYS_setsockopt, pair[0], SOL_SOCKET, SO_SNDTIMEO, &patience, sizeof patience) < 0) {
    int err = last_errno();
    sys(SYS_close, pair[0]);
    sys(SYS_close, pair[1]);
    return -err;
  }
  long daemon_pid = sys(SYS_getpid);
  u64 all = ~0UL, old;
  /* Every signal blocked across clone3: the child must never run one of
   * Bun's handlers, and keeps them blocked for good. */
  if (sys(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, SIGSET_BYTES) < 0) {
    int err = last_errno();
    sys(SYS_close, pair[0]);
    sys(SYS_close, pair[1]);
    return -err;
  }
  int pidfd = -1;
  struct clone_args args;
  zero(&args, sizeof args);
  args.flags = CLONE_PIDFD;
  args.pidfd = (u64)&pidfd;
  /* No exit signal: Bun's SIGCHLD-driven reaping never sees the launcher;
   * jobberd reaps it through its pidfd. */
  args.exit_signal = 0;
  long pid = sys(SYS_clone3, &args, sizeof args);
  if (pid == 0) run_launcher(pair[1], daemon_pid);
  int err = last_errno();
  sys(SYS_rt_sigprocmask, SIG_SETMASK, &old, 0, SIGSET_BYTES);
  sys(SYS_close, pair[1]);
  if (pid < 0) {
    sys(SYS_close, pair[0]);
    return -err;
  }
  out[0] = (int)pid;
  out[1] = pidfd;
  out[2] = pair[0];
  return 0;
}

/* A failure of jobberd's end of the socket; the timeout its options set
 * shows as EAGAIN, told apart here from an EAGAIN the launcher answers
 * with (clone3 refused by a pids limit). */
static int socket_errno(void) { return last_errno() == EAGAIN ? ETIMEDOUT : last_errno(); }

/*
 * Asks the launcher for a job: sends the request (see the protocol above)
 * and waits for the answer, which comes as soon as init is cloned. On
 * success returns 0 and stores init's PID in out[0], its pidfd in out[1]
 * and the ready pipe's read end in out[2]; on failure returns -errno
 * (-EPIPE: the launcher is gone).
 */
int jobber_launch(int sock, const char *body, u32 body_bytes, const int *fds, int fd_count, int *out) {
  if (fd_count < FIXED_FDS || fd_count > MAX_REQUEST_FDS) return -EINVAL;
  struct request_header header;
  header.magic = REQUEST_MAGIC;
  header.body_bytes = body_bytes;
  header.fd_count = (u32)fd_count;
  header.reserved = 0;
  struct iovec iov;
  iov.base = &header;
  iov.len = sizeof header;
  u64 control[CMSG_SPACE(MAX_REQUEST_FDS * sizeof(int)) / 8 + 1];
  zero(control, sizeof control);
  struct cmsghdr *cmsg = (struct cmsghdr *)control;
  cmsg->len = CMSG_LEN((u64)fd_count * sizeof(int));
  cmsg->level = SOL_SOCKET;
  cmsg->type = SCM_RIGHTS;
  int *passed = (int *)((char *)control + CMSG_DATA_OFFSET);
  for (int i = 0; i < fd_count; i++) passed[i] = fds[i];
  struct msghdr msg;
  zero(&msg, sizeof msg);
  msg.iov = &iov;
  msg.iovlen = 1;
  msg.control = control;
  msg.controllen = CMSG_SPACE((u64)fd_count * sizeof(int));
  long sent;
  do sent = sys(SYS_sendmsg, sock, &msg, MSG_NOSIGNAL);
  while (sent < 0 && last_errno() == EINTR);
  if (sent < 0) return -socket_errno();
  /* The rest of the header, then the body (the launcher reads it as it comes). */
  const char *rest = (const char *)&header + sent;
  u64 left = sizeof header - (u64)sent;
  for (int part = 0; part < 2; part++) {
    while (left > 0) {
      long n = sys(SYS_sendto, sock, rest, left, MSG_NOSIGNAL, 0, 0);
      if (n < 0) {
        if (last_errno() == EINTR) continue;
        return -socket_errno();
      }
      rest += n;
      left -= (u64)n;
    }
    rest = body;
    left = body_bytes;
  }

  struct reply answer;
  int received[2];
  int count = receive_with_fds(sock, &answer, sizeof answer, received, 2);
  if (count < 0) return -socket_errno();
  if (answer.error != 0 || count != 2) {
    close_fds(received, count);
    return answer.error != 0 ? answer.error : -EPROTO;
  }
  out[0] = answer.pid;
  out[1] = received[0];
  out[2] = received[1];
  return 0;
}

/* Reaps a child of jobberd (the launcher): 0 when reaped, 1 while it runs
 * (only without `wait`), -errno. */
int jobber_reap(int pidfd, int wait) {
  struct siginfo_head info[SIGINFO_BYTES / sizeof(struct siginfo_head)];
  zero(info, sizeof info);
  if (sys(SYS_waitid, P_PIDFD, pidfd, info, WEXITED | WALL | (wait ? 0 : WNOHANG), 0) < 0) return -last_errno();
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

/* Defined last: its literal is the last of this file's data (see code_span in shed.c). */
static const char *launcher_data_end(void) { return "end of the launcher's data"; }
