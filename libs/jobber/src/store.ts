// The on-disk layout of jobs:
//   <state>/last-id                          highest id ever handed out
//   <state>/jobs/<tenant>/<id>/job.json      argv, limits, creation time
//                              log           the job's stdout and stderr
//                              pid           host PID of the job's init
//                              exit          written by init: how the command ended
//                              stop          present when a user asked to stop it
//                              timed-out     present when its timeout stopped it
//                              status.json   the final status, written once
//   <state>/jobs/<tenant>/.removed-<id>/     a job being removed (renamed first, then deleted)
import {
  closeSync,
  constants,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { errnoCode } from "./errors";
import type { ResolvedLimits } from "./limits";
import { ensurePrivateDir } from "./private-dir";
import { readIfExists } from "./read-if-exists";
import type { JobStatus } from "./status";

export interface JobRecord {
  id: number;
  tenant: string;
  argv: string[];
  /** argv as a command line, for people. */
  command: string;
  /** The resolved program, argv[0] is what the user typed. */
  program: string;
  createdAt: string;
  limits: ResolvedLimits;
  /** KEY=VALUE entries the client asked for (absent in records older than them). */
  env?: string[];
  /** The working directory inside the job's view; "/" when absent. */
  workdir?: string;
}

/** Writes a whole file or nothing: readers never see a torn one. */
function writeAtomically(path: string, content: string): void {
  const temporary = `${path}.tmp`;
  writeFileSync(temporary, content, { mode: 0o600 });
  renameSync(temporary, path);
}

export class JobStore {
  readonly jobsDir: string;

  constructor(readonly stateDir: string) {
    ensurePrivateDir(stateDir, "state directory");
    this.jobsDir = join(stateDir, "jobs");
    ensurePrivateDir(this.jobsDir, "jobs directory");
  }

  jobDir(tenant: string, id: number): string {
    return join(this.jobsDir, tenant, String(id));
  }

  logPath(tenant: string, id: number): string {
    return join(this.jobDir(tenant, id), "log");
  }

  /** Creates the job's directory; fails if it exists, so an id is never used twice. */
  create(record: JobRecord): void {
    mkdirSync(join(this.jobsDir, record.tenant), { recursive: true, mode: 0o700 });
    mkdirSync(this.jobDir(record.tenant, record.id), { mode: 0o700 });
    // Written in place, not through a temporary file and a rename: file
    // creation is the dominant cost of a start on slow disks, and a reader
    // that catches it half-written treats the job as not there yet (read()).
    writeFileSync(join(this.jobDir(record.tenant, record.id), "job.json"), JSON.stringify(record), {
      mode: 0o600,
      flag: "wx",
    });
  }

  /** Opens the log for the job to append to (its stdout and stderr) and the job directory for init. */
  openForLaunch(tenant: string, id: number): { logFd: number; jobDirFd: number } {
    const dir = this.jobDir(tenant, id);
    const logFd = openSync(
      join(dir, "log"),
      constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND,
      0o600,
    );
    try {
      return { logFd, jobDirFd: openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY) };
    } catch (error) {
      closeSync(logFd);
      throw error;
    }
  }

  /** The job's record; undefined for no such job, or one whose record is still being written. */
  read(tenant: string, id: number): JobRecord | undefined {
    const text = readIfExists(join(this.jobDir(tenant, id), "job.json"));
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as JobRecord;
    } catch {
      return undefined;
    }
  }

  /** The tenant's job ids, oldest first. */
  ids(tenant: string): number[] {
    try {
      return readdirSync(join(this.jobsDir, tenant))
        .map(Number)
        .filter((id) => Number.isSafeInteger(id) && id > 0)
        .sort((a, b) => a - b);
    } catch (error) {
      if (errnoCode(error) === "ENOENT") return [];
      throw error;
    }
  }

  /**
   * Deletes a job's directory and log. It is renamed out of sight first, so
   * that a removal cut short (a crash) leaves no half-job to list, only a
   * `.removed-<id>` directory that the next start deletes. Readers that have
   * the log open keep reading it: the file goes when they close it.
   */
  remove(tenant: string, id: number): void {
    const removing = join(this.jobsDir, tenant, `.removed-${id}`);
    renameSync(this.jobDir(tenant, id), removing);
    rmSync(removing, { recursive: true, force: true });
  }

  /** Finishes removals a crash cut short. */
  finishRemovals(): void {
    for (const tenant of this.tenants()) {
      for (const name of readdirSync(join(this.jobsDir, tenant))) {
        if (name.startsWith(".removed-"))
          rmSync(join(this.jobsDir, tenant, name), { recursive: true, force: true });
      }
    }
  }

  tenants(): string[] {
    return readdirSync(this.jobsDir).filter((name) => /^[0-9a-f]{64}$/.test(name));
  }

  writePid(tenant: string, id: number, pid: number): void {
    writeFileSync(join(this.jobDir(tenant, id), "pid"), `${pid}\n`, { mode: 0o600 });
  }

  readPid(tenant: string, id: number): number | undefined {
    const pid = Number(readIfExists(join(this.jobDir(tenant, id), "pid")));
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  }

  readExit(tenant: string, id: number): string | undefined {
    return readIfExists(join(this.jobDir(tenant, id), "exit"));
  }

  markStopRequested(tenant: string, id: number): void {
    writeFileSync(join(this.jobDir(tenant, id), "stop"), `${new Date().toISOString()}\n`, { mode: 0o600 });
  }

  stopRequested(tenant: string, id: number): boolean {
    return readIfExists(join(this.jobDir(tenant, id), "stop")) !== undefined;
  }

  markTimedOut(tenant: string, id: number): void {
    writeFileSync(join(this.jobDir(tenant, id), "timed-out"), `${new Date().toISOString()}\n`, {
      mode: 0o600,
    });
  }

  timedOut(tenant: string, id: number): boolean {
    return readIfExists(join(this.jobDir(tenant, id), "timed-out")) !== undefined;
  }

  readFinalStatus(tenant: string, id: number): JobStatus | undefined {
    const text = readIfExists(join(this.jobDir(tenant, id), "status.json"));
    return text === undefined ? undefined : (JSON.parse(text) as JobStatus);
  }

  writeFinalStatus(tenant: string, id: number, status: JobStatus): void {
    writeAtomically(join(this.jobDir(tenant, id), "status.json"), JSON.stringify(status));
  }

  /**
   * The high-water mark of job ids, kept in `<state>/last-id` as a
   * fixed-width number rewritten in place: one small positional write per
   * start, no file created.
   */
  openLastId(): { read(): number; write(id: number): void; close(): void } {
    const fd = openSync(join(this.stateDir, "last-id"), constants.O_RDWR | constants.O_CREAT, 0o600);
    return {
      read: () => {
        const id = Number(readFileSync(fd, "utf8").trim() || 0);
        return Number.isSafeInteger(id) ? id : 0;
      },
      write: (id) => {
        writeSync(fd, `${String(id).padStart(20, "0")}\n`, 0);
      },
      close: () => closeSync(fd),
    };
  }
}
