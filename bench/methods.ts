// How each figure of results.json is measured, by its key: a figure means
// little without it. run.ts refuses to write a figure that has none here.

const START =
  "StartJob(['/bin/true']) on a warm mTLS connection, each job followed to its end before the next";
const UNSHARE =
  "`unshare -pfmnui --mount-proc --fork /bin/true` (util-linux) run by Bun.spawn, from the spawn to its exit; run just before the StartJob samples";
const LATENCY =
  "bash writes $EPOCHREALTIME then `read -t 0.01` on a FIFO (no fork per line); latency = CLOCK_REALTIME when the reader holds the line − the timestamp in it";
const THROUGHPUT =
  "dd if=/dev/zero bs=1MiB into the job's log; MB/s = bytes received / wall time from FollowJobLog to the stream's end; each follower on its own connection, handshaken before timing";
const RAW =
  "bench/raw-grpc-server.ts: its own process, jobberd's TLS credentials and FollowJobLog definition, streaming the same log file in 64 KiB chunks (jobberd's)";
const MANY = "/bin/sleep 1000 jobs started one after another on one connection, all running at once";
const ABUSE =
  "a finished job with a 63 MiB log; the attackers are bench/abusive-clients.ts: a hand-rolled HTTP/2 client that grants every flow-control window and never reads a byte. RSS = jobberd's VmRSS after round trips (GetJobs) until it stops growing";
const CPU_PER_GB =
  "CPU time (utime + stime from /proc) of the server process during the streams / GB streamed";

export const METHODS: Record<string, string> = {
  unshare_p50_ms: UNSHARE,
  unshare_p99_ms: UNSHARE,
  start_p50_ms: `${START}; time from the call to its answer, which comes once the command has been executed`,
  start_p99_ms: `${START}; time from the call to its answer`,
  run_p50_ms: `${START}; time from the StartJob call to the end of the FollowJobLog stream: the job's whole life as its client sees it`,
  spawn_p50_ms: "Bun.spawn(['/bin/true']) until it returns (it vforks, so the child has called execve)",
  spawn_p99_ms: "Bun.spawn(['/bin/true']) until it returns",
  start_server_p50_ms:
    "the same StartJob calls, timed inside jobberd from its handler's call to its answer (bench/daemon-hook.ts, preloaded into jobberd by the bench; no log parsing); leaves out HTTP/2, TLS and (de)serialisation",
  start_server_p99_ms: "as start_server_p50_ms",
  state_fs_file_create_p50_us:
    "open(O_CREAT|O_EXCL) + close of 100 empty files in a fresh directory on the state directory's filesystem",
  unary_rtt_p50_ms: "GetJobs (no jobs yet) on the same warm connection as the StartJob samples",
  unary_rtt_p99_ms: "as unary_rtt_p50_ms",
  daemon_cpu_ms_per_job:
    "jobberd's CPU time (utime + stime from /proc, 10 ms ticks) over the StartJob samples, each started and followed to its end, / samples",
  daemon_minor_faults_per_job: "jobberd's minor page faults (/proc/PID/stat) over the same samples / samples",
  start_tmpfs_state_p50_ms: `${START}; a second jobberd whose state directory is on tmpfs (/dev/shm)`,
  start_tmpfs_state_p99_ms: "as start_tmpfs_state_p50_ms",
  starts_per_s:
    "2 clients, each on its own connection, each starting /bin/true jobs back to back (the next StartJob when the last answers) for metadata.sizes.startsSeconds; jobs started / time from the first call to the last answer. The jobs end meanwhile; all are followed to their end before the next part",
  follow_latency_p50_us: `${LATENCY}; reader: FollowJobLog of the job`,
  follow_latency_p99_us: `${LATENCY}; reader: FollowJobLog of the job`,
  tail_latency_p50_us: `${LATENCY}; the same program outside any job, writing a plain file; reader: fs.watch (inotify) + readSync`,
  tail_latency_p99_us: "as tail_latency_p50_us",
  grpc_raw_latency_p50_us: `${LATENCY}; the lines made by a bare grpc-js server (bench/raw-grpc-server.ts) every 10 ms, no file, no inotify`,
  grpc_raw_latency_p99_us: "as grpc_raw_latency_p50_us",
  follow_mbps_1: `${THROUGHPUT}; 1 follower, from StartJob's answer, while dd writes`,
  follow_mbps_1_finished: `${THROUGHPUT}; 1 follower of the same log once the job has ended`,
  grpc_raw_mbps: `${RAW}; 1 stream`,
  follow_mbps_100: `${THROUGHPUT}; 100 followers of one job, from its start, aggregate`,
  grpc_raw_mbps_100: `${RAW}; 100 concurrent streams, aggregate`,
  daemon_cpu_s_per_gb_1: `${CPU_PER_GB}; jobberd, 1 follower`,
  raw_server_cpu_s_per_gb_1: `${CPU_PER_GB}; the raw server, 1 stream`,
  daemon_cpu_s_per_gb_100: `${CPU_PER_GB}; jobberd, 100 followers`,
  raw_server_cpu_s_per_gb_100: `${CPU_PER_GB}; the raw server, 100 streams`,
  jobs_1000_start_p50_ms: `StartJob(['/bin/true']), each followed to its end, while the /bin/sleep 1000 jobs run`,
  jobs_1000_start_p99_ms: "as jobs_1000_start_p50_ms",
  jobs_1000_ramp_start_p50_ms: `StartJob of the k-th of the ${MANY}, with k − 1 already running`,
  jobs_1000_ramp_start_p99_ms: "as jobs_1000_ramp_start_p50_ms",
  idle_rss_mb:
    "jobberd's VmRSS after warm-up jobs have ended and 0.5 s more, no job running (its own jobberd)",
  jobs_1000_rss_mb: `jobberd's VmRSS with the ${MANY}`,
  jobs_1000_rss_per_job_kb: "(jobs_1000_rss_mb − idle_rss_mb) / jobs",
  jobs_1000_job_pss_mb: "sum of smaps_rollup PSS of every running job's init and its descendants",
  jobs_1000_job_pss_per_job_kb: "jobs_1000_job_pss_mb / jobs",
  jobs_1000_stop_all_s: "StopJob of every running job, 64 at a time, until each has answered",
  stalled_followers_200_rss_mb: `${ABUSE}; growth with 200 FollowJobLog streams from offset 0 open on 10 connections (its own jobberd)`,
  stalled_follower_rss_kb: "stalled_followers_200_rss_mb / 200",
  snapshots_40_peak_rss_growth_mb: `${ABUSE}; 40 GetJobLog of it at once over 4 ordinary clients that read; growth of VmHWM (reset through clear_refs first) over VmRSS before`,
  unread_snapshots_10_rss_growth_mb: `${ABUSE}; growth with 10 GetJobLog of it on one connection that never reads`,
};

/** Keys of `figures` with no method above. */
export function figuresWithoutMethod(figures: Record<string, number>): string[] {
  return Object.keys(figures).filter((key) => !(key in METHODS));
}
