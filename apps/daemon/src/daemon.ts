// jobberd: the job library behind gRPC over mutual TLS.
import { type FSWatcher, watch } from "node:fs";
import { join } from "node:path";
import { Server } from "@grpc/grpc-js";
import type { ServerSurfaceCall } from "@grpc/grpc-js/build/src/server-call";
import { type Certificate, type Jobber, type JobberOptions, openJobber } from "@jobber/jobber";
import { jobServiceDefinition } from "@jobber/proto";
import type { ConsolaInstance } from "consola";
import { Authenticator } from "./auth";
import { bootstrapHome } from "./pki";
import { RequestLog } from "./request-log";
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
  /** What jobs and tenants may use (library defaults where absent). */
  defaultLimits?: JobberOptions["defaultLimits"];
  maxLimits?: JobberOptions["maxLimits"];
  tenantQuotas?: JobberOptions["tenantQuotas"];
  retentionMs?: number;
  minFree?: JobberOptions["minFree"];
  /** Concurrent FollowJobLog streams per tenant; 64. */
  tenantStreams?: number;
}

export interface Daemon {
  /** The address it listens on, with the port it got. */
  address: string;
  jobber: Jobber;
  /** Stops accepting, ends open streams with UNAVAILABLE, lets go of jobs (they keep running). */
  shutdown(): Promise<void>;
}

/** Server options: a StartJob request has no business being larger than this. */
const MAX_REQUEST_BYTES = 4 * 1024 * 1024;
const SHUTDOWN_GRACE_MS = 2000;

export async function startDaemon(options: DaemonOptions): Promise<Daemon> {
  const { home, logger } = options;
  if ((await bootstrapHome(home)).created) {
    logger.success(`created a CA, a server certificate and a first client identity in ${home}`);
  }
  const jobber = openJobber({
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
  });
  const authenticator = await Authenticator.fromHome(home);
  const poolWatch = watchPool(join(home, "pool"), authenticator, logger);

  const authenticate = (call: ServerSurfaceCall): Certificate =>
    jobber.certificateFromDer(authenticator.authenticatePeer(call).der);
  const service = createJobService({
    authenticate,
    log: new RequestLog(logger),
    tenantStreams: options.tenantStreams ?? 64,
  });
  const server = new Server({
    "grpc.max_receive_message_length": MAX_REQUEST_BYTES,
  });
  server.addService(jobServiceDefinition, service.implementation);
  const credentials = await loadServerCredentials(home);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(options.listen, credentials, (error, boundPort) =>
      error ? reject(error) : resolve(boundPort),
    ),
  );
  const host = options.listen.slice(0, options.listen.lastIndexOf(":"));
  const address = `${host}:${port}`;
  logger.info(
    `listening on ${address} (cgroups ${jobber.cgroupLayout}, ${jobber.stats().runningJobs} running jobs adopted)`,
  );

  let stopping: Promise<void> | undefined;
  const shutdown = () => {
    stopping ??= new Promise<void>((resolve) => {
      poolWatch?.close();
      service.endStreams("shutting down");
      const force = setTimeout(() => server.forceShutdown(), SHUTDOWN_GRACE_MS);
      server.tryShutdown(() => {
        clearTimeout(force);
        jobber.close();
        resolve();
      });
    });
    return stopping;
  };
  return { address, jobber, shutdown };
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
