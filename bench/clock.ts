// The wall clock in microseconds, read the way the job's writer reads it.
//
// A job and the benchmark share no monotonic clock that a shell can print, but
// they share CLOCK_REALTIME: the writer prints bash's $EPOCHREALTIME
// (gettimeofday, µs) and the reader calls clock_gettime(CLOCK_REALTIME) through
// libc. Date.now() has only millisecond resolution, and performance.timeOrigin
// + performance.now() is the monotonic clock offset once at start-up, which
// drifts from the wall clock as NTP slews it.
import { dlopen, ptr } from "bun:ffi";

const CLOCK_REALTIME = 0;

const libc = dlopen("libc.so.6", {
  clock_gettime: { args: ["i32", "ptr"], returns: "i32" },
});
const timespec = new BigInt64Array(2);
const timespecPtr = ptr(timespec);

/** CLOCK_REALTIME in microseconds (fractional). */
export function realtimeMicros(): number {
  libc.symbols.clock_gettime(CLOCK_REALTIME, timespecPtr);
  return Number(timespec[0]) * 1e6 + Number(timespec[1]) / 1e3;
}
