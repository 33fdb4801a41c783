// jobberd: the job library behind gRPC over mutual TLS.
import { type FSWatcher, watch } from "node:fs";
import { join } from "node:path";
import { Server } from "@grpc/grpc-js";
import { type Certificate, type Jobber, type JobberOptions, type JobEnded, openJobber } from "@jobber/jobber";
import { file_jobber_v1_jobber, jobServiceDefinition } from "@jobber/proto";
import type { ConsolaInstance } from "consola";
import { Authenticator } from "./auth";
import { addHealthService } from "./health";
import { DaemonMetrics, listenFailure, type MetricsServer, serveMetrics } from "./metrics";
import { bootstrapHome, missingServerNames } from "./pki";
import { addReflectionService } from "./reflection";
import { RequestLog } from "./request-log";
import type { ServerSurfaceCall } from "./server-call";
import { createJobService } from "./service";
import { loadServerCredentials } from "./tls";

export interface DaemonOptions {
  /** host:port; port 0 picks a free one. */
  listen: string;
  home: string;
  stateDir: string;
  logger: ConsolaInstance;
  /** The user jobs run as; the library's default (nobody) when absent. */
  runAs?: { uid: number; gid: number };
  stopGraceMs?: number;
  /** The cgroup under which jobs get theirs; "jobber". Two daemons must not share one. */
  cgroupParent?: string;
  /** Extra DNS names and IP addresses for the server certificate made at bootstrap. */
  serverNames?: string[];
  /** host:port for Prometheus metrics at /metrics; off when absent. */
  metricsListen?: string;
  /** What jobs and tenants may use (library defaults where absent). */
  defaultLimits?: JobberOptions["defaultLimits"];
  maxLimits?: JobberOptions["maxLimits"];
  tenantQuotas?: JobberOptions["tenantQuotas"];
  retentionMs?: number;
  minFree?: JobberOptions["minFree"];
  /** Concurrent FollowJobLog streams per tenant; DEFAULT_TENANT_STREAMS. */
  tenantStreams?: number;
}

export interface Daemon {
  /** The address it listens on, with the port it got. */
  address: string;
  jobber: Jobber;
  /** Where metrics are served, with the port it got; undefined when off. */
  metricsAddress?: string;
  /** Stops accepting, ends open streams with UNAVAILABLE, lets go of jobs (they keep running). */
  shutdown(): Promise<void>;
}

/** Concurrent FollowJobLog streams per tenant when not given. */
export const DEFAULT_TENANT_STREAMS = 64;

/** Server options: a StartJob request has no business being larger than this. */
const MAX_REQUEST_BYTES = 4 * 1024 * 1024;
const SHUTDOWN_GRACE_MS = 2000;

export async function startDaemon(options: DaemonOptions): Promise<Daemon> {
  const { home, logger } = options;
  const serverNames = options.serverNames ?? [];
  if ((await bootstrapHome(home, serverNames)).created) {
    logger.info(`created a CA, a server certificate and a first client identity in ${home}`);
  } else {
    const missing = await missingServerNames(home, serverNames);
    if (missing.length > 0) {
      logger.warn(
        `${home}/server.crt does not name ${missing.join(", ")}: --san applies only when jobberd makes the certificate; issue a new server.crt with them`,
      );
    }
  }
  let metrics: DaemonMetrics | undefined;
  const jobber: Jobber = openJobber({
    home,
    stateDir: options.stateDir,
    runAs: options.runAs,
    stopGraceMs: options.stopGraceMs,
    cgroupParent: options.cgroupParent,
    defaultLimits: options.defaultLimits,
    maxLimits: options.maxLimits,
    tenantQuotas: options.tenantQuotas,
    retentionMs: options.retentionMs,
    minFree: options.minFree,
    warn: (message) => logger.warn(message),
    onJobEnded: (ended) => {
      logJobEnded(logger, ended);
      metrics?.jobFinished(ended.job.status.state);
    },
  });
  const authenticator = await Authenticator.fromHome(home);
  const poolWatch = watchPool(join(home, "pool"), authenticator, logger);

  const authenticate = (call: ServerSurfaceCall): Certificate =>
    authenticator.authenticate(call, (der) => jobber.certificateFromDer(der));
  const requestLog = new RequestLog(logger, (rpc, code, seconds) => metrics?.rpc(rpc, code, seconds));
  const service = createJobService({
    authenticate,
    log: requestLog,
    tenantStreams: options.tenantStreams ?? DEFAULT_TENANT_STREAMS,
    onJobStarted: (tenant, job) => {
      metrics?.jobStarted();
      logger.info("job started", {
        tenant: tenant.hash().slice(0, 12),
        id: job.id,
        command: job.command,
      });
    },
  });
  const server = new Server({
    "grpc.max_receive_message_length": MAX_REQUEST_BYTES,
  });
  server.addService(jobServiceDefinition, service.implementation);
  const health = addHealthService(server);
  addReflectionService(server, [file_jobber_v1_jobber], authenticate, requestLog);
  const credentials = await loadServerCredentials(home);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(options.listen, credentials, (error, boundPort) =>
      error
        ? reject(new Error(`cannot listen on ${options.listen}: ${bindFailure(error)}`))
        : resolve(boundPort),
    ),
  );
  let metricsServer: MetricsServer | undefined;
  if (options.metricsListen) {
    metrics = new DaemonMetrics({
      runningJobs: () => jobber.stats().runningJobs,
      openFollowStreams: () => service.openStreams,
    });
    try {
      metricsServer = serveMetrics(options.metricsListen, metrics);
    } catch (error) {
      server.forceShutdown();
      void jobber.close();
      throw error;
    }
    logger.info(`metrics at http://${metricsServer.address}/metrics`);
  }
  const host = options.listen.slice(0, options.listen.lastIndexOf(":"));
  const address = `${host}:${port}`;
  logger.info(
    `listening on ${address} (cgroups ${jobber.cgroupLayout}, ${jobber.stats().runningJobs} running jobs adopted)`,
  );

  let stopping: Promise<void> | undefined;
  const shutdown = () => {
    stopping ??= new Promise<void>((resolve) => {
      poolWatch?.close();
      health.stopServing();
      metricsServer?.close();
      service.endStreams("shutting down");
      const force = setTimeout(() => server.forceShutdown(), SHUTDOWN_GRACE_MS);
      server.tryShutdown(() => {
        clearTimeout(force);
        // Resolves once the fds held for running jobs are closed; the jobs keep running.
        void jobber.close().then(resolve);
      });
    });
    return stopping;
  };
  return { address, jobber, metricsAddress: metricsServer?.address, shutdown };
}

/** One line per job that ends: whose, which, how, after how long. */
function logJobEnded(logger: ConsolaInstance, { tenant, job }: JobEnded): void {
  const { status } = job;
  const finished = status.finishedAt ? Date.parse(status.finishedAt) : Date.now();
  logger.info("job ended", {
    tenant: tenant.slice(0, 12),
    id: job.id,
    status: status.state,
    exit_code: status.exitCode,
    signal: status.signal,
    reason: status.reason,
    duration_ms: Math.max(0, finished - Date.parse(job.createdAt)),
  });
}

/**
 * grpc-js reports a failed bind as "No address added out of total 1 resolved
 * errors: [listen EADDRINUSE: …]"; the system error inside is what a person
 * can act on, so this is the one place that reads it.
 */
function bindFailure(error: Error): string {
  const code = /\b(E[A-Z]+)\b/.exec(error.message)?.[1];
  return code ? listenFailure({ code }) : error.message;
}

/** Certificates added to (or removed from) the pool take effect without a restart. */
function watchPool(
  pool: string,
  authenticator: Authenticator,
  logger: ConsolaInstance,
): FSWatcher | undefined {
  try {
    return watch(pool, () => {
      authenticator.reload().then(
        () => logger.info(`client pool reloaded: ${authenticator.poolSize} certificates`),
        (error) => logger.warn(`client pool not reloaded, the previous one stays in force: ${error}`),
      );
    });
  } catch (error) {
    logger.warn(`not watching ${pool} for new certificates: ${error}`);
    return undefined;
  }
}
