// Start latency: StartJob on a warm mTLS connection, until the job's command
// has been executed in its sandbox, against a bare Bun.spawn; and the whole
// life of such a job (StartJob, then FollowJobLog to its end).
import type { BenchDaemon } from "./daemon";
import { type Summary, summarize } from "./stats";

export interface StartResult {
  start: Summary;
  /** StartJob, then FollowJobLog until it ends: a job's whole life as its client sees it. */
  run: Summary;
  /** jobberd's own time for the same calls: in its StartJob handler (bench/daemon-hook.ts). */
  startServer: Summary;
  spawn: Summary;
  /** A unary call that does nothing (GetJobs, no jobs listed) on the same connection: the transport's share. */
  unaryRoundTrip: Summary;
  /** jobberd's CPU time and minor page faults per job, its start and its end (the samples' mean). */
  daemonCpuMsPerJob: number;
  daemonMinorFaultsPerJob: number;
}

export async function benchStart(
  daemon: BenchDaemon,
  options: { samples: number; warmup: number },
): Promise<StartResult> {
  const client = daemon.client();
  // Connect and authenticate once: the figures are for a warm connection.
  await client.getJobs();
  const unaryRoundTrip: number[] = [];
  for (let i = 0; i < options.warmup + options.samples; i++) {
    const began = performance.now();
    await client.getJobs();
    if (i >= options.warmup) unaryRoundTrip.push(performance.now() - began);
  }
  const serverTimesBefore = (await daemon.serverTimes("StartJob")).length;
  const start: number[] = [];
  const run: number[] = [];
  let cpuBefore = 0;
  let faultsBefore = 0;
  for (let i = 0; i < options.warmup + options.samples; i++) {
    if (i === options.warmup) {
      cpuBefore = daemon.cpuSeconds();
      faultsBefore = daemon.minorFaults();
    }
    const began = performance.now();
    const { job } = await client.startJob({ args: ["/bin/true"] });
    const elapsed = performance.now() - began;
    if (i >= options.warmup) start.push(elapsed);
    // Let the job end (its stream ends then) so that its bookkeeping does not
    // overlap the next sample.
    for await (const _ of client.followJobLog({ jobId: job?.id ?? 0n })) {
      // /bin/true writes nothing.
    }
    // The whole life of a job as a client sees it: started, ran, over.
    if (i >= options.warmup) run.push(performance.now() - began);
  }
  const daemonCpuMsPerJob = ((daemon.cpuSeconds() - cpuBefore) * 1000) / options.samples;
  const daemonMinorFaultsPerJob = (daemon.minorFaults() - faultsBefore) / options.samples;
  const startServer = (await daemon.serverTimes("StartJob")).slice(serverTimesBefore + options.warmup);
  if (startServer.length !== options.samples) {
    throw new Error(
      `jobberd's handler timed ${startServer.length} StartJob calls, expected ${options.samples}`,
    );
  }

  const spawn: number[] = [];
  for (let i = 0; i < options.warmup + options.samples; i++) {
    const began = performance.now();
    // Bun.spawn vforks, so it returns with the pid once the child has called
    // execve; that is what is timed.
    const child = Bun.spawn(["/bin/true"], { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
    const elapsed = performance.now() - began;
    if (i >= options.warmup) spawn.push(elapsed);
    await child.exited;
  }
  return {
    start: summarize(start),
    run: summarize(run),
    startServer: summarize(startServer),
    spawn: summarize(spawn),
    unaryRoundTrip: summarize(unaryRoundTrip),
    daemonCpuMsPerJob,
    daemonMinorFaultsPerJob,
  };
}
