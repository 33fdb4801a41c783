// Sustained starts: `clients` clients, each on a connection of its own (as
// separate `jb run` users would be), start /bin/true jobs back to back for
// `seconds`; the figure is all the jobs they started over the time it took.
// Jobs end meanwhile, as they would in real use: their ends cost jobberd
// CPU the starts then compete with. Before returning it waits for every one
// of them to have ended, by following each log to its end (no polling), so
// that nothing of this part spills into the next.
import { JobStatus } from "../proto/src/index.ts";
import { type BenchDaemon, forEachLimited } from "./daemon";

export interface StartsPerSecondResult {
  clients: number;
  jobs: number;
  /** From the first StartJob to the answer of the last. */
  seconds: number;
  perSecond: number;
  /** Jobs each client started. */
  perClient: number[];
  /** jobberd's CPU time over the window divided by the jobs started in it (their starts and nearly all their ends). */
  daemonCpuMsPerJob: number;
  /** From the end of the window until every job had ended and its stream closed. */
  drainSeconds: number;
}

/** Streams open at once per client while waiting for the ends (tenants may have a stream quota). */
const FOLLOWERS_PER_CLIENT = 16;

export async function benchStartsPerSecond(
  daemon: BenchDaemon,
  options: { seconds: number; clients: number },
): Promise<StartsPerSecondResult> {
  const clients = Array.from({ length: options.clients }, () => daemon.client());
  // Handshake now, not in the timed window.
  await Promise.all(clients.map((client) => client.getJobs()));

  const cpuBefore = daemon.cpuSeconds();
  const began = performance.now();
  const deadline = began + options.seconds * 1000;
  const started = await Promise.all(
    clients.map(async (client) => {
      const ids: bigint[] = [];
      while (performance.now() < deadline) {
        const { job } = await client.startJob({ args: ["/bin/true"] });
        if (!job) throw new Error("StartJob answered without a job");
        ids.push(job.id);
      }
      return ids;
    }),
  );
  const seconds = (performance.now() - began) / 1000;
  const cpuSeconds = daemon.cpuSeconds() - cpuBefore;
  const jobs = started.reduce((sum, ids) => sum + ids.length, 0);

  const drainBegan = performance.now();
  await Promise.all(
    clients.map((client, i) =>
      forEachLimited(started[i] ?? [], FOLLOWERS_PER_CLIENT, async (jobId) => {
        for await (const _ of client.followJobLog({ jobId })) {
          // /bin/true writes nothing; the stream ends when the job has.
        }
      }),
    ),
  );
  const drainSeconds = (performance.now() - drainBegan) / 1000;
  // One look, not a poll: every stream has ended, so every job must have.
  const { jobs: listed } = await (clients[0] ?? daemon.client()).getJobs();
  const stillRunning = listed.filter((job) => job.status === JobStatus.RUNNING).length;
  if (stillRunning > 0) throw new Error(`${stillRunning} jobs still running after their streams ended`);

  return {
    clients: options.clients,
    jobs,
    seconds,
    perSecond: jobs / seconds,
    perClient: started.map((ids) => ids.length),
    daemonCpuMsPerJob: (cpuSeconds * 1000) / jobs,
    drainSeconds,
  };
}
