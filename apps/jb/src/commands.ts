// What each command does: flags become one request, the response becomes a
// table, JSON, or the job's bytes. main.ts loads this module only when a
// command runs, so that `jb --help` and usage errors do not load gRPC.
import { homedir } from "node:os";
import { resolve } from "node:path";
import { ClientIdentityError, connectJobService, type JobClient } from "@jobber/proto";
import { DEFAULT_ADDR, parseCount, parseCpus, parseJobId, parseRate, parseSize } from "./args";
import { describeError, exitStatusOf, isJobFailure, type Target } from "./errors";
import { Failure, UsageError } from "./failure";
import { DETACHED_EXIT, detachHint, followToStdout, STDOUT_CLOSED_EXIT } from "./follow";
import { endingNote, exitCodeOf, jobJson, jobTable, toJson, truncationNote } from "./format";
import { logger, writeStdout } from "./output";

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
async function withClient<T>(args: ConnectionArgs, work: (client: JobClient) => Promise<T>): Promise<T> {
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
    return await work(client);
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
}

/** The request's Limits; a field left out means the daemon's default. */
interface LimitsInit {
  cpus?: number;
  memoryBytes?: bigint;
  ioReadBps?: bigint;
  ioWriteBps?: bigint;
  pidsMax?: bigint;
  logBytes?: bigint;
}

function limitsOf(args: LimitArgs): LimitsInit | undefined {
  const limits: LimitsInit = {};
  if (args.cpus !== undefined) limits.cpus = parseCpus("--cpus", args.cpus);
  if (args.memory !== undefined) limits.memoryBytes = parseSize("--memory", args.memory);
  if (args["io-read"] !== undefined) limits.ioReadBps = parseRate("--io-read", args["io-read"]);
  if (args["io-write"] !== undefined) limits.ioWriteBps = parseRate("--io-write", args["io-write"]);
  if (args.pids !== undefined) limits.pidsMax = parseCount("--pids", args.pids);
  if (args.log !== undefined) limits.logBytes = parseSize("--log", args.log);
  return Object.keys(limits).length > 0 ? limits : undefined;
}

export interface StartArgs extends ConnectionArgs, LimitArgs {
  argv: string[];
  follow?: boolean;
  quiet?: boolean;
  json?: boolean;
}

export async function start(args: StartArgs): Promise<number> {
  if (args.argv.length === 0) {
    throw new UsageError("jb start needs a command, e.g. jb start -- echo hello; see jb start --help");
  }
  if (args.follow && args.json) {
    throw new UsageError("-f and -json cannot be combined: with -f, stdout carries the job's output");
  }
  const limits = limitsOf(args);
  return withClient(args, async (client) => {
    const response = await client.startJob({ args: args.argv, limits }, within(QUICK_CALL_MS));
    const job = present(response.job, "StartJob");
    if (!args.follow) {
      if (args.quiet) await writeStdout(`${job.id}\n`);
      else await writeStdout(args.json ? toJson(jobJson(job)) : jobTable("Job started:", [job]));
      return 0;
    }
    const end = await followToStdout(client, job.id);
    if (end === "detached") {
      logger.info(detachHint(job.id));
      return DETACHED_EXIT;
    }
    if (end === "stdout-closed") return STDOUT_CLOSED_EXIT;
    // The stream ends once the job has ended; its status says how.
    const final = present((await client.getJob({ jobId: job.id }, within(QUICK_CALL_MS))).job, "GetJob");
    for (const note of [endingNote(final), truncationNote(final)]) if (note) logger.info(note);
    return exitCodeOf(final);
  });
}

export async function list(args: ConnectionArgs & { json?: boolean }): Promise<number> {
  return withClient(args, async (client) => {
    const { jobs } = await client.getJobs({}, within(QUICK_CALL_MS));
    if (args.json) await writeStdout(toJson(jobs.map(jobJson)));
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

export async function log(args: JobArgs & { follow?: boolean }): Promise<number> {
  const jobId = parseJobId(args.id, "jb log");
  return withClient(args, async (client) => {
    if (!args.follow) {
      const { log: bytes } = await client.getJobLog({ jobId }, within(SLOW_CALL_MS));
      await writeStdout(bytes);
      return 0;
    }
    const end = await followToStdout(client, jobId);
    if (end === "detached") {
      logger.info(detachHint(jobId));
      return DETACHED_EXIT;
    }
    return end === "stdout-closed" ? STDOUT_CLOSED_EXIT : 0;
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
  const target = targetOf(args);
  return withClient(args, async (client) => {
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

export async function stop(args: JobArgs): Promise<number> {
  const jobId = parseJobId(args.id, "jb stop");
  return withClient(args, async (client) => {
    const job = present((await client.stopJob({ jobId }, within(SLOW_CALL_MS))).job, "StopJob");
    await writeStdout(args.json ? toJson(jobJson(job)) : jobTable("Job stopped:", [job]));
    return 0;
  });
}
