// Run by jobs.test.ts in a process of its own: a job running, the library
// closed; prints what was still held. One JSON object on stdout.
import { existsSync, readdirSync, watch } from "node:fs";
import { createFixture, waitForOutput } from "./fixture";

const openFds = () => readdirSync("/proc/self/fd").length;
// The runtime's one inotify instance stays open once any file was watched: open it first.
watch(import.meta.path).close();
const fdsBefore = openFds();
const fixture = createFixture();
try {
  const job = fixture.jobber
    .certificateFromDer(Buffer.from("closing"))
    .newJob(["sh", "-c", "echo up; exec sleep 1000"]);
  await job.start();
  await waitForOutput(job.follow(), "up");
  const launcher = fixture.jobber.stats().launcherPid as number;
  const heldWhileRunning = openFds() > fdsBefore;
  await fixture.jobber.close();
  const fdsAfterClose = openFds();
  const launcherGone = !existsSync(`/proc/${launcher}`);
  // As after a daemon's shutdown: the next one adopts the job and can stop it.
  const adopted = await fixture.reopen().certificateFromDer(Buffer.from("closing")).getJob(job.id);
  const stillRunning = (await adopted.status()).state;
  const stoppedByTheNext = (await adopted.stop(0)).status.state;
  await fixture.finish();
  console.log(
    JSON.stringify({
      fdsBefore,
      fdsAfterClose,
      heldWhileRunning,
      launcherGone,
      stillRunning,
      stoppedByTheNext,
    }),
  );
} finally {
  fixture.cleanup();
}
