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
