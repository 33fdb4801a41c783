// The results: flat figures under the keys the issues name, the targets they
// are judged against (reported, never asserted: the bench exits 0 whether
// they are met or not), and a table for people.
import { round } from "./stats";

export type Figures = Record<string, number>;

export interface Target {
  figure: string;
  /** Key of the figure in results.json. */
  key: string;
  unit: string;
  /** Key of the baseline it is compared with, if any. */
  baselineKey?: string;
  /** value / baseline. */
  ratio?: number;
  target?: string;
  met?: boolean;
}

/** A verdict, or none when a figure it needs is missing (e.g. no `unshare` on the host). */
function verdict(ok: boolean, ...needed: (number | undefined)[]): boolean | undefined {
  return needed.every((value) => value !== undefined && !Number.isNaN(value)) ? ok : undefined;
}

/** The rows of the table, with the verdicts. A figure missing from `figures` shows as "—" and is not judged. */
export function judge(figures: Figures): Target[] {
  const f = (key: string) => figures[key] ?? Number.NaN;
  const ratio = (key: string, baselineKey: string) => f(key) / f(baselineKey);
  const unshare = f("unshare_p50_ms");
  const runBound = f("start_p50_ms") + 2 * unshare;
  const startsBound = 800 / unshare;
  const rssPerJobKB = f("jobs_1000_rss_per_job_kb");
  return [
    {
      figure: "StartJob p50 (warm mTLS, to the command executed)",
      key: "start_p50_ms",
      unit: "ms",
      baselineKey: "unshare_p50_ms",
      ratio: ratio("start_p50_ms", "unshare_p50_ms"),
      target: "≤ unshare, spawn to exit",
      met: verdict(f("start_p50_ms") <= unshare, unshare),
    },
    {
      figure: "  Bun.spawn of /bin/true, until it returns (exec done), p50",
      key: "spawn_p50_ms",
      unit: "ms",
    },
    {
      figure: "  jobberd's own time in StartJob (its handler), p50",
      key: "start_server_p50_ms",
      unit: "ms",
    },
    {
      figure: "  a no-op unary call (GetJobs), p50",
      key: "unary_rtt_p50_ms",
      unit: "ms",
    },
    {
      figure: "  creating a file in the state directory's filesystem, p50",
      key: "state_fs_file_create_p50_us",
      unit: "µs",
    },
    {
      figure: "  StartJob p50, state directory on tmpfs",
      key: "start_tmpfs_state_p50_ms",
      unit: "ms",
    },
    {
      figure: "StartJob p99",
      key: "start_p99_ms",
      unit: "ms",
      baselineKey: "unshare_p99_ms",
      ratio: ratio("start_p99_ms", "unshare_p99_ms"),
    },
    {
      figure: "StartJob and follow to the end of /bin/true, p50",
      key: "run_p50_ms",
      unit: "ms",
      baselineKey: "start_p50_ms",
      ratio: ratio("run_p50_ms", "start_p50_ms"),
      target: `≤ StartJob + 2× unshare (${cell(runBound, "ms")})`,
      met: verdict(f("run_p50_ms") <= runBound, runBound),
    },
    {
      figure: "StartJobs per second, 2 clients, sustained",
      key: "starts_per_s",
      unit: "/s",
      target: `≥ 800 / unshare ms (${cell(startsBound, "/s")})`,
      met: verdict(f("starts_per_s") >= startsBound, startsBound, f("starts_per_s")),
    },
    {
      figure: "jobberd CPU per job (its start and end)",
      key: "daemon_cpu_ms_per_job",
      unit: "ms",
      target: "≤ 1.5 ms",
      met: verdict(f("daemon_cpu_ms_per_job") <= 1.5, f("daemon_cpu_ms_per_job")),
    },
    {
      figure: "  jobberd minor page faults per job",
      key: "daemon_minor_faults_per_job",
      unit: "",
    },
    {
      figure: "follow latency p50 (write → gRPC follower)",
      key: "follow_latency_p50_us",
      unit: "µs",
      baselineKey: "grpc_raw_latency_p50_us",
      ratio: ratio("follow_latency_p50_us", "grpc_raw_latency_p50_us"),
      target: "≤ 1.3× bare grpc-js stream",
      met: ratio("follow_latency_p50_us", "grpc_raw_latency_p50_us") <= 1.3,
    },
    {
      figure: "follow latency p99",
      key: "follow_latency_p99_us",
      unit: "µs",
      baselineKey: "grpc_raw_latency_p99_us",
      ratio: ratio("follow_latency_p99_us", "grpc_raw_latency_p99_us"),
      target: "< 2000 µs",
      met: f("follow_latency_p99_us") < 2000,
    },
    {
      figure: "  inotify tail of a plain file (no gRPC), p50",
      key: "tail_latency_p50_us",
      unit: "µs",
    },
    {
      figure: "  inotify tail of a plain file (no gRPC), p99",
      key: "tail_latency_p99_us",
      unit: "µs",
    },
    {
      figure: "1 follower, live",
      key: "follow_mbps_1",
      unit: "MB/s",
      baselineKey: "grpc_raw_mbps",
      ratio: ratio("follow_mbps_1", "grpc_raw_mbps"),
      target: "≥ 80 % of raw grpc-js",
      met: ratio("follow_mbps_1", "grpc_raw_mbps") >= 0.8,
    },
    {
      figure: "1 follower, finished log",
      key: "follow_mbps_1_finished",
      unit: "MB/s",
      baselineKey: "grpc_raw_mbps",
      ratio: ratio("follow_mbps_1_finished", "grpc_raw_mbps"),
    },
    {
      figure: "100 followers of one job, aggregate",
      key: "follow_mbps_100",
      unit: "MB/s",
      baselineKey: "follow_mbps_1",
      ratio: ratio("follow_mbps_100", "follow_mbps_1"),
      target: "≥ 1.5× 1 follower",
      met: ratio("follow_mbps_100", "follow_mbps_1") >= 1.5,
    },
    {
      figure: "100 followers vs raw grpc-js, 100 streams",
      key: "follow_mbps_100",
      unit: "MB/s",
      baselineKey: "grpc_raw_mbps_100",
      ratio: ratio("follow_mbps_100", "grpc_raw_mbps_100"),
    },
    {
      figure: "StartJob p99 with the many jobs running",
      key: "jobs_1000_start_p99_ms",
      unit: "ms",
      baselineKey: "start_p99_ms",
      ratio: ratio("jobs_1000_start_p99_ms", "start_p99_ms"),
    },
    {
      figure: "jobberd RSS with the many jobs running",
      key: "jobs_1000_rss_mb",
      unit: "MB",
      baselineKey: "idle_rss_mb",
      ratio: ratio("jobs_1000_rss_mb", "idle_rss_mb"),
      target: `< 100 KB per job (${cell(rssPerJobKB, "KB")})`,
      met: rssPerJobKB < 100,
    },
    {
      figure: "memory of the jobs' own processes (PSS), per job",
      key: "jobs_1000_job_pss_per_job_kb",
      unit: "KB",
    },
    {
      figure: "jobberd RSS growth, 200 followers of a 63 MiB log that never read",
      key: "stalled_followers_200_rss_mb",
      unit: "MB",
    },
    {
      figure: "  per follower that never reads (was ~4,700 KB)",
      key: "stalled_follower_rss_kb",
      unit: "KB",
      target: "≤ ~1 MiB",
      met: (figures.stalled_follower_rss_kb ?? Number.NaN) <= 1049,
    },
    {
      figure: "jobberd peak RSS growth, 40 concurrent snapshots of a 63 MiB log (was ~4,500 MB)",
      key: "snapshots_40_peak_rss_growth_mb",
      unit: "MB",
    },
    {
      figure: "jobberd RSS growth, 10 snapshots of a 63 MiB log never read (was ~1,200 MB)",
      key: "unread_snapshots_10_rss_growth_mb",
      unit: "MB",
    },
  ];
}

function cell(value: number | undefined, unit = ""): string {
  if (value === undefined || Number.isNaN(value)) return "—";
  return `${round(value)}${unit ? ` ${unit}` : ""}`;
}

/** A plain-text table: figure, value, baseline, ratio, target, met?. */
export function formatTable(rows: Target[], figures: Figures): string {
  const header = ["figure", "value", "baseline", "ratio", "target", "met?"];
  const lines = rows.map((row) => [
    row.figure,
    cell(figures[row.key], row.unit),
    row.baselineKey ? `${cell(figures[row.baselineKey], row.unit)} (${row.baselineKey})` : "—",
    row.ratio === undefined || Number.isNaN(row.ratio) ? "—" : `${cell(row.ratio)}×`,
    row.target ?? "—",
    // A target whose figure or baseline is missing is not judged.
    row.met === undefined ? (row.target ? "n/a" : "") : row.met ? "yes" : "NO",
  ]);
  const widths = header.map((title, i) =>
    Math.max(title.length, ...lines.map((line) => line[i]?.length ?? 0)),
  );
  const format = (line: string[]) => line.map((text, i) => text.padEnd(widths[i] as number)).join(" │ ");
  const rule = widths.map((width) => "─".repeat(width)).join("─┼─");
  return [format(header), rule, ...lines.map(format)].join("\n");
}
