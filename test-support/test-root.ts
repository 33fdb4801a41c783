// Where the library's and the daemon's tests make their temporary directories.
import { mkdirSync } from "node:fs";

/**
 * Not /tmp or /var/tmp: every job gets private ones, which would hide the
 * tests' directories whether or not the daemon masks them, and the masking
 * is what the tests must prove.
 */
export const TEST_ROOT = "/var/lib/jobber-test";
mkdirSync(TEST_ROOT, { recursive: true, mode: 0o700 });
