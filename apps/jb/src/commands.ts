// What each command does: flags become one request, the response becomes a
// table, JSON, or the job's bytes. main.ts loads this module only when a
// command runs, so that `jb --help` and usage errors do not load gRPC.
import { homedir } from "node:os";
import { resolve } from "node:path";
import { ClientIdentityError, connectJobService, type JobClient, LOG_BYTES_KEY } from "@jobber/proto";
import {
  DEFAULT_ADDR,
  parseCount,
  parseCpus,
  parseDuration,
  parseEnvEntry,
  parseJobId,
  parseRate,
  parseSize,
} from "./args";
import { describeError, exitStatusOf, isJobFailure, metadataValue, reasonOf, type Target } from "./errors";
import { Failure, UsageError } from "./failure";
import { DETACHED_EXIT, detachHint, type FollowEnd, followToStdout, STDOUT_CLOSED_EXIT } from "./follow";
import { endingNote, exitCodeOf, jobJson, jobTable, toJson, truncationNote } from "./format";
import { logger, writeStdout } from "./output";
import { withRetry } from "./retry";

/**
 * How long a quick call may take, connecting included: a daemon that is not
 * running fails at once (connection refused); one that cannot be reached
 * fails here rather than hanging.
 */
const QUICK_CALL_MS = 10_000;
/** Stopping waits for the job to end (the daemon's grace period); a log snapshot may be large. */
const SLOW_CALL_MS = 120_000;

export interface ConnectionArgs {
  addr?: string;
  home?: string;
}

function targetOf(args: ConnectionArgs): Target {
  return {
    addr: args.addr || process.env.JOBBER_ADDR || DEFAULT_ADDR,
    home: resolve(args.home || process.env.JOBBER_HOME || `${homedir()}/.jobber`),
  };
}

/** Connects with the home's identity, runs `work`, closes; any failure becomes a one-line Failure. */
async function withClient<T>(
  args: ConnectionArgs,
  work: (client: JobClient, target: Target) => Promise<T>,
): Promise<T> {
  const target = targetOf(args);
  let client: JobClient | undefined;
  try {
    try {
      client = connectJobService({ addr: target.addr, home: target.home });
    } catch (error) {
      // A missing file is a ClientIdentityError; anything else is PEM the TLS layer could not use.
      if (error instanceof ClientIdentityError || !(error instanceof Error)) throw error;
      throw new Failure(
        `cannot use the identity in ${target.home} (${error.message}): client.crt, client.key and ca.crt must be PEM and the key must match the certificate`,
        1,
      );
    }
    return await work(client, target);
  } catch (error) {
    if (error instanceof Failure) throw error;
    throw new Failure(describeError(error, target), exitStatusOf(error));
  } finally {
    client?.close();
  }
}

const within = (ms: number) => ({ deadline: new Date(Date.now() + ms) });

/** A response that must carry a job. */
function present<T>(job: T | undefined, rpc: string): T {
  if (job === undefined) throw new Error(`jobberd answered ${rpc} without a job`);
  return job;
}

export interface LimitArgs {
  cpus?: string;
  memory?: string;
  "io-read"?: string;
  "io-write"?: string;
  pids?: string;
  log?: string;
  timeout?: string;
}

/** The request's Limits; a field left out means the daemon's default. */
interface LimitsInit {
  cpus?: number;
  memoryBytes?: bigint;
  ioReadBps?: bigint;
  ioWriteBps?: bigint;
  pidsMax?: bigint;
  logBytes?: bigint;
  timeoutSeconds?: number;
}

function limitsOf(args: LimitArgs): LimitsInit | undefined {
  const limits: LimitsInit = {};
  if (args.cpus !== undefined) limits.cpus = parseCpus("--cpus", args.cpus);
  if (args.memory !== undefined) limits.memoryBytes = parseSize("--memory", args.memory);
  if (args["io-read"] !== undefined) limits.ioReadBps = parseRate("--io-read", args["io-read"]);
  if (args["io-write"] !== undefined) limits.ioWriteBps = parseRate("--io-write", args["io-write"]);
  if (args.pids !== undefined) limits.pidsMax = parseCount("--pids", args.pids);
  if (args.log !== undefined) limits.logBytes = parseSize("--log", args.log);
  if (args.timeout !== undefined) limits.timeoutSeconds = parseDuration("--timeout", args.timeout);
  return Object.keys(limits).length > 0 ? limits : undefined;
}

export interface StartArgs extends ConnectionArgs, LimitArgs {
  argv: string[];
  follow?: boolean;
  quiet?: boolean;
  json?: boolean;
  /** -e, each KEY=VALUE or KEY. */
  env?: string[];
  workdir?: string;
}

/** One line on stderr when a follow lost jobberd and asks again. */
function reconnectNote(offset: bigint, cause: unknown): void {
  const code = (cause as { code?: number }).code;
  logger.info(`jobberd went away (status ${code}); reconnecting to resume at byte ${offset}`);
}

/** Exit status and stderr note for a follow that did not see the job to its end. */
async function followEnded(end: FollowEnd, jobId: bigint): Promise<number | undefined> {
  if (end === "detached") {
    logger.info(detachHint(jobId));
    return DETACHED_EXIT;
  }
  if (end === "stdout-closed") return STDOUT_CLOSED_EXIT;
  return undefined;
}

export async function start(args: StartArgs): Promise<number> {
  if (args.argv.length === 0) {
    throw new UsageError("jb start needs a command, e.g. jb start -- echo hello; see jb start --help");
  }
  if (args.follow && args.json) {
    throw new UsageError("-f and -json cannot be combined: with -f, stdout carries the job's output");
  }
  const limits = limitsOf(args);
  const env = (args.env ?? []).map((entry) => parseEnvEntry(entry));
  return withClient(args, async (client) => {
    // Never retried: a start that reached jobberd but whose answer was lost would run twice.
    const response = await client.startJob(
      { args: args.argv, limits, env, workdir: args.workdir ?? "" },
      within(QUICK_CALL_MS),
    );
    const job = present(response.job, "StartJob");
    if (!args.follow) {
      if (args.quiet) await writeStdout(`${job.id}\n`);
      else await writeStdout(args.json ? toJson(jobJson(job)) : jobTable("Job started:", [job]));
      return 0;
    }
    const end = await followToStdout(client, job.id, { onReconnect: reconnectNote });
    const early = await followEnded(end, job.id);
    if (early !== undefined) return early;
    // The stream ends once the job has ended; its status says how.
    const final = present(
      (await withRetry(() => client.getJob({ jobId: job.id }, within(QUICK_CALL_MS)))).job,
      "GetJob",
    );
    for (const note of [endingNote(final), truncationNote(final)]) if (note) logger.info(note);
    return exitCodeOf(final);
  });
}

export async function list(args: ConnectionArgs & { json?: boolean; quiet?: boolean }): Promise<number> {
  if (args.quiet && args.json) throw new UsageError("-q and -json cannot be combined: -q prints only ids");
  return withClient(args, async (client) => {
    const { jobs } = await client.getJobs({}, within(QUICK_CALL_MS));
    if (args.quiet) await writeStdout(jobs.map((job) => `${job.id}\n`).join(""));
    else if (args.json) await writeStdout(toJson(jobs.map(jobJson)));
    else if (jobs.length === 0) await writeStdout("No jobs found.\n");
    else await writeStdout(jobTable("Jobs found:", jobs));
    return 0;
  });
}

export interface JobArgs extends ConnectionArgs {
  id?: string;
  json?: boolean;
}

export async function status(args: JobArgs): Promise<number> {
  const jobId = parseJobId(args.id, "jb status");
  return withClient(args, async (client) => {
    const job = present((await client.getJob({ jobId }, within(QUICK_CALL_MS))).job, "GetJob");
    await writeStdout(args.json ? toJson(jobJson(job)) : jobTable("Job status:", [job]));
    return 0;
  });
}

/**
 * The log so far in one message; one too big for a message (jobberd says how
 * big) is streamed up to that size instead, so `jb log` prints any log.
 */
async function snapshot(client: JobClient, jobId: bigint): Promise<FollowEnd> {
  try {
    const { log: bytes } = await withRetry(() => client.getJobLog({ jobId }, within(SLOW_CALL_MS)));
    await writeStdout(bytes);
    return "ended";
  } catch (error) {
    const size = metadataValue(error, LOG_BYTES_KEY);
    if (reasonOf(error) !== "LOG_TOO_LARGE" || size === undefined || !/^\d+$/.test(size)) throw error;
    return followToStdout(client, jobId, { until: BigInt(size), onReconnect: reconnectNote });
  }
}

export async function log(args: JobArgs & { follow?: boolean }): Promise<number> {
  const jobId = parseJobId(args.id, "jb log");
  return withClient(args, async (client) => {
    const end = args.follow
      ? await followToStdout(client, jobId, { onReconnect: reconnectNote })
      : await snapshot(client, jobId);
    return (await followEnded(end, jobId)) ?? 0;
  });
}

/**
 * Removes finished jobs, each id in turn: one that cannot be removed
 * (unknown, running) is reported and the rest still go (exit 1 if any
 * failed), like `docker rm`.
 */
export async function remove(args: ConnectionArgs & { ids: string[] }): Promise<number> {
  if (args.ids.length === 0) {
    throw new UsageError("jb rm needs job ids, e.g. jb rm 12 13; jb list shows your jobs");
  }
  const ids = args.ids.map((id) => parseJobId(id, "jb rm"));
  return withClient(args, async (client, target) => {
    let failed = false;
    for (const jobId of ids) {
      try {
        await client.removeJob({ jobId }, within(QUICK_CALL_MS));
        await writeStdout(`${jobId}\n`);
      } catch (error) {
        // A connection that fails fails them all: said once, by withClient.
        if (!isJobFailure(error)) throw error;
        failed = true;
        logger.error(describeError(error, target));
      }
    }
    return failed ? 1 : 0;
  });
}

export async function stop(args: ConnectionArgs & { ids: string[]; json?: boolean }): Promise<number> {
  if (args.ids.length === 0) parseJobId(undefined, "jb stop");
  const jobIds = args.ids.map((id) => parseJobId(id, "jb stop"));
  return withClient(args, async (client, target) => {
    // All at once: each waits out the daemon's grace period, so one after another would add them up.
    const results = await Promise.allSettled(
      jobIds.map(async (jobId) =>
        present((await client.stopJob({ jobId }, within(SLOW_CALL_MS))).job, "StopJob"),
      ),
    );
    const stopped = results.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []));
    const failures = results.flatMap((result) => (result.status === "rejected" ? [result.reason] : []));
    if (stopped.length > 0) {
      if (args.json)
        await writeStdout(
          toJson(jobIds.length === 1 ? jobJson(stopped[0] as (typeof stopped)[0]) : stopped.map(jobJson)),
        );
      else await writeStdout(jobTable(stopped.length === 1 ? "Job stopped:" : "Jobs stopped:", stopped));
    }
    if (failures.length === 0) return 0;
    // One line per job that could not be stopped; a single failure goes through the usual path.
    if (failures.length === 1 && stopped.length === 0) throw failures[0];
    for (const failure of failures) logger.error(describeError(failure, target));
    return 1;
  });
}
