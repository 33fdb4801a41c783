// Prometheus metrics (`--metrics-listen host:port`, served at /metrics):
// jobs running, started and finished by status, RPC latency by method and
// status code, open follow streams, and the process's own (CPU, memory, fds,
// event loop). Plain HTTP on its own port: bind it to an address only the
// scraper reaches.
import type { status } from "@grpc/grpc-js";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { parseListenAddress } from "./listen-address";
import { statusName } from "./status-codes";

/** What the metrics read at scrape time rather than count. */
export interface MetricSources {
  runningJobs(): number;
  openFollowStreams(): number;
}

/** From a no-op call (~0.3 ms) to a stop that waits out a long grace period. */
const RPC_BUCKETS_SECONDS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

export class DaemonMetrics {
  readonly registry = new Registry();
  private readonly started: Counter;
  private readonly finished: Counter<"status">;
  private readonly rpcDuration: Histogram<"method" | "code">;

  constructor(sources: MetricSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: "jobber_jobs_running",
      help: "Jobs running now (adopted ones included).",
      registers,
      collect() {
        this.set(sources.runningJobs());
      },
    });
    new Gauge({
      name: "jobber_follow_streams_open",
      help: "FollowJobLog streams open now.",
      registers,
      collect() {
        this.set(sources.openFollowStreams());
      },
    });
    this.started = new Counter({ name: "jobber_jobs_started_total", help: "Jobs started.", registers });
    this.finished = new Counter({
      name: "jobber_jobs_finished_total",
      help: "Jobs that ended, by final status (exited, stopped, killed, oom_killed, failed, timed_out).",
      labelNames: ["status"],
      registers,
    });
    this.rpcDuration = new Histogram({
      name: "jobber_rpc_duration_seconds",
      help: "Time from a call's arrival to its answer (for FollowJobLog, to the stream's end), by method and status code.",
      labelNames: ["method", "code"],
      buckets: RPC_BUCKETS_SECONDS,
      registers,
    });
  }

  jobStarted(): void {
    this.started.inc();
  }

  jobFinished(state: string): void {
    this.finished.inc({ status: state });
  }

  rpc(method: string, code: status, seconds: number): void {
    this.rpcDuration.observe({ method, code: statusName(code) }, seconds);
  }
}

export interface MetricsServer {
  /** host:port it listens on, with the port it got. */
  address: string;
  close(): void;
}

/** Serves the registry at GET /metrics in the Prometheus text format. */
export function serveMetrics(listen: string, metrics: DaemonMetrics): MetricsServer {
  const { host, port } = parseListenAddress(listen, "--metrics-listen");
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = Bun.serve({
      hostname: host,
      port,
      async fetch(request) {
        const { pathname } = new URL(request.url);
        if (pathname !== "/metrics")
          return new Response("not found: metrics are at /metrics\n", { status: 404 });
        if (request.method !== "GET" && request.method !== "HEAD") return new Response(null, { status: 405 });
        return new Response(await metrics.registry.metrics(), {
          headers: { "content-type": metrics.registry.contentType },
        });
      },
    });
  } catch (error) {
    throw new Error(`--metrics-listen ${listen}: ${listenFailure(error)}`);
  }
  const shown = host.includes(":") ? `[${host}]` : host;
  return { address: `${shown}:${server.port}`, close: () => void server.stop(true) };
}

/** A listen error in words, for the one line jobberd prints before it exits. */
export function listenFailure(error: unknown): string {
  const code = typeof error === "object" && error !== null && "code" in error ? String(error.code) : "";
  if (code === "EADDRINUSE")
    return "the address is already in use (another jobberd, or another program, listens there)";
  if (code === "EADDRNOTAVAIL") return "no interface of this host has that address";
  if (code === "EACCES") return "not allowed to listen on that port";
  return error instanceof Error ? error.message : String(error);
}
