// The results: flat figures under the keys issue 5 names, the targets they
// are judged against (reported, never asserted), and a table for people.
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

/** The rows of the table, with the verdicts. `figures` must hold every key named. */
export function judge(figures: Figures): Target[] {
  const ratio = (key: string, baselineKey: string) =>
    (figures[key] ?? Number.NaN) / (figures[baselineKey] ?? 1);
  const rssPerJobKB = figures.jobs_1000_rss_per_job_kb ?? Number.NaN;
  return [
    {
      figure: "StartJob p50 (warm mTLS, to running init)",
      key: "start_p50_ms",
      unit: "ms",
      baselineKey: "spawn_p50_ms",
      ratio: ratio("start_p50_ms", "spawn_p50_ms"),
      target: "≤ 3× Bun.spawn",
      met: ratio("start_p50_ms", "spawn_p50_ms") <= 3,
    },
    {
      figure: "  StartJob and follow to the end of /bin/true, p50",
      key: "run_p50_ms",
      unit: "ms",
    },
    {
      figure: "  jobberd's own time in StartJob, p50",
      key: "start_server_p50_ms",
      unit: "ms",
    },
    {
      figure: "  creating a file in the state directory's filesystem, p50",
      key: "state_fs_file_create_p50_us",
      unit: "µs",
    },
    {
      figure: "  a no-op unary call (GetJobs), p50",
      key: "unary_rtt_p50_ms",
      unit: "ms",
    },
    {
      figure: "  StartJob p50, state directory on tmpfs",
      key: "start_tmpfs_state_p50_ms",
      unit: "ms",
    },
    {
      figure: "  jobberd CPU per job (start and end)",
      key: "start_daemon_cpu_ms_per_job",
      unit: "ms",
    },
    {
      figure: "  jobberd minor page faults per job",
      key: "start_daemon_minor_faults_per_job",
      unit: "",
    },
    {
      figure: "StartJob p99",
      key: "start_p99_ms",
      unit: "ms",
      baselineKey: "spawn_p99_ms",
      ratio: ratio("start_p99_ms", "spawn_p99_ms"),
    },
    {
      figure: "follow latency p50 (write → gRPC follower)",
      key: "follow_latency_p50_us",
      unit: "µs",
      baselineKey: "tail_latency_p50_us",
      ratio: ratio("follow_latency_p50_us", "tail_latency_p50_us"),
    },
    {
      figure: "follow latency p99",
      key: "follow_latency_p99_us",
      unit: "µs",
      baselineKey: "tail_latency_p99_us",
      ratio: ratio("follow_latency_p99_us", "tail_latency_p99_us"),
      target: "< 2000 µs",
      met: (figures.follow_latency_p99_us ?? Number.NaN) < 2000,
    },
    {
      figure: "  timestamp lines over a bare grpc-js stream, p50",
      key: "grpc_raw_latency_p50_us",
      unit: "µs",
    },
    {
      figure: "  timestamp lines over a bare grpc-js stream, p99",
      key: "grpc_raw_latency_p99_us",
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
      target: "≥ 1 follower",
      met: ratio("follow_mbps_100", "follow_mbps_1") >= 1,
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
      target: `< 100 KB per job (${round(rssPerJobKB)} KB)`,
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
      figure: "  per follower that never reads (was ~4,900 KB)",
      key: "stalled_follower_rss_kb",
      unit: "KB",
      target: "≤ ~1 MiB",
      met: (figures.stalled_follower_rss_kb ?? Number.NaN) <= 1049,
    },
    {
      figure: "jobberd peak RSS growth, 40 concurrent snapshots of a 63 MiB log (was ~3,400 MB)",
      key: "snapshots_40_peak_rss_growth_mb",
      unit: "MB",
    },
    {
      figure: "jobberd RSS growth, 10 snapshots of a 63 MiB log never read",
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
    row.ratio === undefined ? "—" : `${cell(row.ratio)}×`,
    row.target ?? "—",
    row.met === undefined ? "" : row.met ? "yes" : "NO",
  ]);
  const widths = header.map((title, i) =>
    Math.max(title.length, ...lines.map((line) => line[i]?.length ?? 0)),
  );
  const format = (line: string[]) => line.map((text, i) => text.padEnd(widths[i] as number)).join(" │ ");
  const rule = widths.map((width) => "─".repeat(width)).join("─┼─");
  return [format(header), rule, ...lines.map(format)].join("\n");
}
