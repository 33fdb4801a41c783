/*
 * The job itself: init (PID 1 of the job's namespaces, host root) builds the
 * job's view and forks the command (PID 2) into a user namespace of its
 * own; the command drops everything and execs. Cloned from the launcher
 * process (launcher.c), which has no libc: raw system calls only, and no
 * aggregate initialisers (TinyCC would call memset for them).
 */

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

/* ── init: the job's PID 1 ─────────────────────────────────────────────── */

/* Fixed descriptors of init once it has closed everything else. */
#define INIT_DIR_FD 3
#define INIT_READY_FD 4
#define FIRST_FREE_FD (INIT_READY_FD + 1)

static int g_ready_fd = -1;

/* Tells the daemon how the launch went: "ok\n" or "failed <step> <errno>\n".
 * Only the first call writes. init keeps the pipe open until it exits: its
 * end of file tells the daemon that the job is over. */
static void report_ready(const char *line, int len) {
  if (g_ready_fd < 0) return;
  write_all(g_ready_fd, line, (u64)len);
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
    /* The kernel clears them when root gives way to another user; done
     * again here explicitly, so that no detail of those rules (a securebit
     * such as SECURE_NO_SETUID_FIXUP, say) can leave one behind. */
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

/* The command is gone: so is the job. Everything else in the namespace is
 * killed and reaped *before* the exit is recorded, so that once the record
 * exists (and init's end closes the ready pipe) nothing can write to the
 * log any more: the daemon may end the job's followers and status at once,
 * without waiting for the kernel to tear the namespaces down. */
static void end_job(int dir_fd, int status) {
  sys(SYS_kill, -1, SIGKILL);
  for (;;) {
    int ignored;
    if (sys(SYS_wait4, -1, &ignored, WALL, 0) < 0 && last_errno() != EINTR) break;
  }
  char line[48];
  if (WTERMSIG(status) == 0) {
    record_exit(dir_fd, line, exit_line(line, sizeof line, "exited", WEXITSTATUS(status)));
    sys(SYS_exit_group, WEXITSTATUS(status));
  }
  record_exit(dir_fd, line, exit_line(line, sizeof line, "signaled", WTERMSIG(status)));
  sys(SYS_exit_group, 128 + WTERMSIG(status));
}

/* PID 1 of the job. Never returns. */
static void run_init(const struct launch_config *cfg, const struct launch_strings *str) {
  int dir_fd = (int)cfg->dir_fd;
  g_ready_fd = -1;

  /* Every signal is blocked and every handler is the default: the launcher
   * (launcher.c) set them so when it started, and init inherits them. */
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
      end_job(dir_fd, status);
    }
  }
}
