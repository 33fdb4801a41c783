/* ── Shedding jobberd's address space ───────────────────────────────────
 * A child made by clone3 without CLONE_VM starts as a copy-on-write copy of
 * the whole daemon (~100 MB of mappings): its page tables cost ~2 ms to copy
 * and, kept, every page the daemon wrote afterwards would cost a fault. The
 * launcher process (launcher.c) needs only a stack, its socket and this
 * file's code and data: it moves its stack to a fresh mapping and unmaps
 * everything else (~24 KB remain), once, when it starts. Every job's init
 * is then cloned from that small process. That is why none of this code
 * may call libc: libc is unmapped. */

#define SHED_STACK (128UL * 1024)
/* The top of user space with 4-level page tables (47-bit addresses,
 * arch/x86/include/asm/page_64_types.h); unmapping past a 5-level
 * layout's larger space is not needed: nothing of jobberd lives there. */
#define TASK_END 0x7ffffffff000UL
#define PAGE 4096UL

static void serve(int sock);

struct shed_args {
  int sock;
  u64 keep[2][2];
};

/* The span to keep: this file's code and data. TinyCC puts the code in a
 * mapping of its own and the data (variables, tables, string literals)
 * right after it, in source order, inside a larger heap mapping that is
 * not ours. So keep from the start of the code's mapping to two pages past
 * the last of these objects (launcher_data_end, defined last of all, marks
 * the end). Every variable with static storage is named here. */
static const char *launcher_data_end(void);

static int code_span(u64 *lo, u64 *hi) {
  u64 targets[12];
  int count = 0;
  targets[count++] = (u64)&serve;
  targets[count++] = (u64)&g_errno;
  targets[count++] = (u64)&g_ready_fd;
  targets[count++] = (u64)private_tmp;
  targets[count++] = (u64)step_names;
  targets[count++] = (u64)step_names[0];
  targets[count++] = (u64)devices;
  targets[count++] = (u64)devices[0].path;
  targets[count++] = (u64)dev_links;
  targets[count++] = (u64)denied_calls;
  targets[count++] = (u64)launcher_data_end();
  u64 last = 0;
  for (int t = 0; t < count; t++) {
    if (targets[t] > last) last = targets[t];
  }
  u64 code = (u64)&serve;
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
        if (state == 0 && c == '-') {
          state = 1;
          continue;
        }
        state = 2;
      }
      if (c == '\n') {
        if (code >= start && code < end) *lo = start;
        if (last >= start && last < end) {
          u64 past = round_up(last + 1, PAGE) + 2 * PAGE;
          *hi = past < end ? past : end;
        }
        state = 0;
        start = end = 0;
      }
    }
  }
  sys(SYS_close, fd);
  /* Everything kept must lie in [lo, hi): data placed below the code would
   * be unmapped, so then do not shed at all. */
  for (int t = 0; t < count; t++) {
    if (targets[t] < *lo || targets[t] >= *hi) return -1;
  }
  return *lo < *hi ? 0 : -1;
}

static void shed_then_serve(void *arg) {
  struct shed_args *a = (struct shed_args *)arg;
  u64 lo0 = a->keep[0][0], hi0 = a->keep[0][1], lo1 = a->keep[1][0], hi1 = a->keep[1][1];
  if (lo1 < lo0) {
    u64 t = lo0;
    lo0 = lo1;
    lo1 = t;
    t = hi0;
    hi0 = hi1;
    hi1 = t;
  }
  /* Failures leave a mapping in place: heavier, still correct. */
  if (lo0 > 0) sys(SYS_munmap, 0, lo0);
  if (lo1 > hi0) sys(SYS_munmap, hi0, lo1 - hi0);
  if (TASK_END > hi1) sys(SYS_munmap, hi1, TASK_END - hi1);
  serve(a->sock);
}

/* glibc (≥ 2.35) registers every thread's restartable-sequence area, in
 * its TLS, with the kernel, and a forked child inherits the registration.
 * Once that memory is unmapped the kernel's rseq update on every return to
 * user space fails and raises SIGSEGV, so unregister first. */
/* Weak: a libc without them (glibc < 2.35, musl) registers no rseq area. */
extern long __rseq_offset __attribute__((weak));
extern unsigned int __rseq_size __attribute__((weak));
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

/* Never returns. */
static void shed_and_serve(int sock) {
  u64 code_lo, code_hi;
  /* Should the layout ever not be found, serve unshed: correct, only heavier. */
  if (code_span(&code_lo, &code_hi) < 0) serve(sock);
  u64 size = SHED_STACK + PAGE;
  long region = sys(SYS_mmap, 0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region < 0) serve(sock);
  /* Shedding with an rseq area still registered would fault on the next
   * return to user space: serve unshed instead. */
  if (rseq_unregister() < 0) serve(sock);
  struct shed_args *a = (struct shed_args *)((char *)region + SHED_STACK);
  a->sock = sock;
  a->keep[0][0] = code_lo;
  a->keep[0][1] = code_hi;
  a->keep[1][0] = (u64)region;
  a->keep[1][1] = (u64)region + size;
  call_on_stack((char *)region + SHED_STACK - 64, shed_then_serve, a);
}
