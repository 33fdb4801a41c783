// Tenants apart at the kernel level. Each attack below is first shown to
// work where the sandbox does not reach (on the host, or between two jobs
// of one tenant), then shown to fail between tenants.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FIRST_HOST_ID, IDS_PER_TENANT } from "../src/id-ranges";
import type { Certificate } from "../src/index";
import { collect, createFixture, type Fixture, waitForOutput } from "./fixture";

/** The system's Python (not a per-user one under /root, which jobs cannot reach). */
const PYTHON = "/usr/bin/python3";

let fixture: Fixture;
let alice: Certificate;
let bob: Certificate;
/** Probe programs, somewhere jobs can read them. */
let programs: string;

beforeAll(() => {
  fixture = createFixture();
  alice = fixture.jobber.certificateFromDer(Buffer.from("alice"));
  bob = fixture.jobber.certificateFromDer(Buffer.from("bob"));
  programs = mkdtempSync("/var/lib/jobber-sandbox-");
  chmodSync(programs, 0o755);
  for (const [name, source] of Object.entries(PROGRAMS)) {
    writeFileSync(join(programs, name), source, { mode: 0o644 });
  }
});

afterAll(async () => {
  // Nothing a test started may outlive it.
  await fixture.finish(programs);
});

const PROGRAMS = {
  // store: adds a secret to the caller's user keyring; read: finds it and prints it; clear: empties the keyring.
  "keys.py": `
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
L = ctypes.c_long
USER_KEYRING = L(-4)
def fail():
    print("errno", ctypes.get_errno()); sys.exit(0)
if sys.argv[1] == "store":
    if libc.syscall(L(248), b"user", b"jobber-test-secret", b"s3cret", L(6), USER_KEYRING) < 0: fail()
    print("stored")
elif sys.argv[1] == "read":
    key = libc.syscall(L(250), L(10), USER_KEYRING, b"user", b"jobber-test-secret", L(0))
    if key < 0: fail()
    buf = ctypes.create_string_buffer(64)
    n = libc.syscall(L(250), L(11), L(key), buf, L(64))
    print("read", buf.raw[:n].decode())
else:
    libc.syscall(L(250), L(7), USER_KEYRING)
`,
  // Opens up to N inotify instances and holds them for S seconds.
  "inotify.py": `
import ctypes, sys, time
libc = ctypes.CDLL(None, use_errno=True)
held = []
while len(held) < int(sys.argv[1]):
    fd = libc.inotify_init()
    if fd < 0:
        print("errno", ctypes.get_errno(), "after", len(held), flush=True)
        break
    held.append(fd)
else:
    print("held", len(held), flush=True)
time.sleep(float(sys.argv[2]))
`,
  // Calls each system call with harmless arguments; prints name=errno (0 when it succeeded).
  "syscalls.py": `
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def call(nr, *args):
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    if r == 0 and nr == 56:
        os._exit(0)
    if r > 0 and nr == 56:
        os.waitpid(r, 0)
    return 0 if r >= 0 else ctypes.get_errno()
def in_child(nr, *args):
    pid = os.fork()
    if pid == 0:
        os._exit(call(nr, *args))
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
safe = {
    "bpf": lambda: call(321, 0, 0, 0),
    "perf_event_open": lambda: call(298, 0, 0, -1, -1, 0),
    "userfaultfd": lambda: call(323, 0),
    "io_uring_setup": lambda: call(425, 1, 0),
    "keyctl": lambda: call(250, 0, -3, 0),
    "setns": lambda: call(308, -1, 0),
    "open_by_handle_at": lambda: call(304, -1, 0, 0),
    "unshare_user": lambda: in_child(272, 0x10000000),
    "clone_newuser": lambda: call(56, 0x10000000 | 17, 0, 0, 0, 0),
}
# Not called on the host: they could change it.
harmful = {
    "kexec_load": lambda: call(246, 0, 0, 0, 0),
    "init_module": lambda: call(175, 0, 0, 0),
    "reboot": lambda: call(169, 0, 0, 0, 0),
    "swapon": lambda: call(167, 0, 0),
    "acct": lambda: call(163, 1),
    "quotactl": lambda: call(179, 0, 0, 0, 0),
    "add_key": lambda: call(248, 0, 0, 0, 0, 0),
    "request_key": lambda: call(249, 0, 0, 0, 0),
    "mount": lambda: call(165, 0, 0, 0, 0, 0),
    "umount2": lambda: call(166, 0, 0),
}
import sys
probes = dict(safe, **(harmful if sys.argv[1:] == ["all"] else {}))
for name, probe in probes.items():
    print(name, probe())
print("clone3", call(435, 0, 0))
`,
};

async function output(tenant: Certificate, argv: string[]): Promise<string> {
  const job = tenant.newJob(argv);
  await job.start();
  return (await collect(job.follow())).toString();
}

/** name → errno, from syscalls.py's output. */
function errnos(text: string): Record<string, number> {
  return Object.fromEntries(
    text
      .trim()
      .split("\n")
      .map((line) => line.split(" "))
      .map(([name, errno]) => [name, Number(errno)]),
  );
}

const EPERM = 1;
const ENOSYS = 38;
const EMFILE = 24;

describe("tenants apart in the kernel", () => {
  test("each tenant's jobs map to a host id range of their own, far from the host's users, kept across restarts", async () => {
    const mapOf = async (tenant: Certificate) =>
      (await output(tenant, ["cat", "/proc/self/uid_map", "/proc/self/gid_map"]))
        .trim()
        .split(/\s+/)
        .map(Number);
    const [inside, aliceBase, count, , aliceGidBase] = await mapOf(alice);
    const [, bobBase] = await mapOf(bob);
    expect(inside).toBe(0);
    expect(count).toBe(IDS_PER_TENANT);
    expect(aliceGidBase).toBe(aliceBase as number);
    expect(aliceBase).toBeGreaterThanOrEqual(FIRST_HOST_ID);
    expect(bobBase).toBeGreaterThanOrEqual(FIRST_HOST_ID);
    expect(Math.abs((aliceBase as number) - (bobBase as number))).toBeGreaterThanOrEqual(IDS_PER_TENANT);
    // No host user lives in either range.
    for (const line of readFileSync("/etc/passwd", "utf8").trim().split("\n")) {
      expect(Number(line.split(":")[2])).toBeLessThan(FIRST_HOST_ID);
    }

    const reopened = fixture.reopen();
    alice = reopened.certificateFromDer(Buffer.from("alice"));
    bob = reopened.certificateFromDer(Buffer.from("bob"));
    const carol = reopened.certificateFromDer(Buffer.from("carol"));
    expect((await mapOf(alice))[1]).toBe(aliceBase as number);
    const carolBase = (await mapOf(carol))[1] as number;
    expect([aliceBase, bobBase]).not.toContain(carolBase);
  });

  test("a secret in the user keyring: shared by two processes of one host user, out of every job's reach", async () => {
    const keys = join(programs, "keys.py");
    // The attack, on the host: two processes of one uid, one stores, the next reads.
    const asUser = (...args: string[]) =>
      Bun.spawnSync(["setpriv", "--reuid=4242", "--regid=4242", "--clear-groups", PYTHON, keys, ...args]);
    try {
      expect(asUser("store").stdout.toString()).toBe("stored\n");
      expect(asUser("read").stdout.toString()).toBe("read s3cret\n");
    } finally {
      asUser("clear");
    }
    // Between tenants: no key can be made or looked up at all.
    expect(await output(alice, [PYTHON, keys, "store"])).toBe(`errno ${EPERM}\n`);
    expect(await output(bob, [PYTHON, keys, "read"])).toBe(`errno ${EPERM}\n`);
  });

  test("per-user kernel quotas: one tenant exhausting inotify instances leaves another's untouched", async () => {
    const quota = Number(readFileSync("/proc/sys/fs/inotify/max_user_instances", "utf8"));
    const inotify = join(programs, "inotify.py");
    const hog = alice.newJob([PYTHON, inotify, String(quota), "120"]);
    await hog.start();
    try {
      expect(await waitForOutput(hog.follow(), "\n")).toBe(`held ${quota}\n`);
      // The attack: another job of the same host user is starved.
      expect(await output(alice, [PYTHON, inotify, "1", "0"])).toBe(`errno ${EMFILE} after 0\n`);
      // Another tenant is not.
      expect(await output(bob, [PYTHON, inotify, "1", "0"])).toBe("held 1\n");
    } finally {
      await hog.stop(0);
    }
  });

  test("host unix sockets under /run are out of reach", async () => {
    const path = `/run/jobber-test-${process.pid}.sock`;
    const server = Bun.listen({
      unix: path,
      socket: {
        data() {},
        open(socket) {
          socket.end("hello from the host\n");
        },
      },
    });
    try {
      // The attack, from the host's view: the socket answers.
      const reply = await new Promise<string>((resolve, reject) => {
        Bun.connect({
          unix: path,
          socket: { data: (_, data) => resolve(data.toString()), error: (_, e) => reject(e) },
        });
      });
      expect(reply).toBe("hello from the host\n");
      const probe = `import socket\ns = socket.socket(socket.AF_UNIX)\ntry:\n  s.connect(${JSON.stringify(path)}); print(s.recv(64))\nexcept OSError as e:\n  print(e.__class__.__name__)`;
      expect(await output(alice, [PYTHON, "-c", probe])).toBe("FileNotFoundError\n");
      expect(await output(alice, ["ls", "-A", "/run", "/var/run"])).toBe("/run:\n\n/var/run:\n");
    } finally {
      server.stop(true);
      rmSync(path, { force: true });
    }
  });

  test("calls no job needs fail with EPERM; no privileges can be gained", async () => {
    const syscalls = join(programs, "syscalls.py");
    // On the host these calls go through (or fail for their harmless arguments, never with EPERM).
    const host = errnos(Bun.spawnSync([PYTHON, syscalls]).stdout.toString());
    expect(host.userfaultfd).toBe(0);
    expect(host.unshare_user).toBe(0);
    expect(host.clone_newuser).toBe(0);
    for (const errno of Object.values(host)) expect(errno).not.toBe(EPERM);

    const inJob = errnos(await output(alice, [PYTHON, syscalls, "all"]));
    const { clone3, ...rest } = inJob;
    expect(Object.keys(rest).length).toBe(19);
    for (const [name, errno] of Object.entries(rest)) expect(`${name} ${errno}`).toBe(`${name} ${EPERM}`);
    // clone3's flags are out of a filter's reach: it is refused as unknown, so libc falls back to clone.
    expect(clone3).toBe(ENOSYS);

    const status = await output(alice, [
      "grep",
      "-E",
      "^(NoNewPrivs|Seccomp|Cap(Eff|Prm|Bnd|Amb)):",
      "/proc/self/status",
    ]);
    expect(status).toMatch(/NoNewPrivs:\s+1/);
    expect(status).toMatch(/Seccomp:\s+2/);
    for (const set of ["CapEff", "CapPrm", "CapBnd", "CapAmb"]) {
      expect(status).toMatch(new RegExp(`${set}:\\s+0000000000000000`));
    }
  });

  test("a job has its own /dev, a read-only /proc/sys and masked kernel files", async () => {
    expect((await output(alice, ["ls", "/dev"])).trim().split("\n").sort()).toEqual(
      [
        "fd",
        "full",
        "null",
        "ptmx",
        "pts",
        "random",
        "shm",
        "stderr",
        "stdin",
        "stdout",
        "tty",
        "urandom",
        "zero",
      ].sort(),
    );
    const probe = [
      "echo x > /dev/null && echo null-ok",
      "head -c 4 /dev/urandom | wc -c",
      "cat /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug /proc/sysrq-trigger 2>/dev/null | wc -c",
      "(echo 1 > /proc/sys/kernel/ns_last_pid) 2>/dev/null || echo proc-sys-read-only",
    ].join("; ");
    // What the masks hide is there on the host.
    expect(readFileSync("/proc/timer_list", "utf8").length).toBeGreaterThan(0);
    expect(await output(alice, ["sh", "-c", probe])).toBe("null-ok\n4\n0\nproc-sys-read-only\n");
  });

  test("argv[0] is looked up in the job's view: a hidden program and a missing one get the same answer", async () => {
    // /run is hidden from jobs: a program there exists on the host only.
    const dir = mkdtempSync("/run/jobber-test-");
    chmodSync(dir, 0o755);
    const hidden = join(dir, "tool");
    writeFileSync(hidden, "#!/bin/sh\necho ran\n", { mode: 0o755 });
    try {
      expect(Bun.spawnSync([hidden]).stdout.toString()).toBe("ran\n");
      const refusal = async (path: string) => {
        const error = await alice
          .newJob([path])
          .start()
          .then(
            () => undefined,
            (e: Error & { code?: string }) => e,
          );
        return `${error?.code}: ${error?.message.replace(path, "PATH")}`;
      };
      expect(await refusal(hidden)).toBe("INVALID_ARGUMENT: command not found: PATH");
      expect(await refusal(hidden)).toBe(await refusal(join(dir, "no-such-tool")));
      // Under a directory the job's user may not search (the daemon's home, /root): the
      // same answer whether the file exists or not.
      writeFileSync(join(fixture.home, "tool"), "#!/bin/sh\necho ran\n", { mode: 0o755 });
      expect(await refusal(join(fixture.home, "tool"))).toBe(
        await refusal(join(fixture.home, "no-such-tool")),
      );
      expect(await refusal("/root/.bashrc")).toBe(await refusal("/root/no-such-file"));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("--run-as root is root inside the job's user namespace only", () => {
  let rootFixture: Fixture;
  let tenant: Certificate;
  beforeAll(() => {
    rootFixture = createFixture({ runAs: { uid: 0, gid: 0 } });
    tenant = rootFixture.jobber.certificateFromDer(Buffer.from("root tenant"));
  });
  afterAll(() => rootFixture.cleanup());

  test("it cannot unmount masks, remount /, reach core_pattern or read root-only files", async () => {
    const corePattern = readFileSync("/proc/sys/kernel/core_pattern", "utf8");
    const probe = [
      "id -u",
      "umount /run 2>/dev/null || echo no-umount",
      "mount -o remount,rw / 2>/dev/null || echo no-remount",
      `cat ${rootFixture.home}/secret.key 2>/dev/null || echo no-key`,
      "(echo '|/bin/sh' > /proc/sys/kernel/core_pattern) 2>/dev/null || echo no-core-pattern",
      "cat /etc/shadow >/dev/null 2>&1 || echo no-shadow",
      "touch /etc/jobber-root-escape 2>/dev/null || echo no-write",
    ].join("; ");
    const job = tenant.newJob(["sh", "-c", probe]);
    await job.start();
    expect((await collect(job.follow())).toString()).toBe(
      "0\nno-umount\nno-remount\nno-key\nno-core-pattern\nno-shadow\nno-write\n",
    );
    expect(readFileSync("/proc/sys/kernel/core_pattern", "utf8")).toBe(corePattern);
    expect(existsSync("/etc/jobber-root-escape")).toBe(false);
  });
});
