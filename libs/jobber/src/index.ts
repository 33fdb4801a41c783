// The public surface of the job library: what the daemon needs, nothing more.
export type { Certificate } from "./certificate";
export { joinCommandLine, splitCommandLine } from "./command-line";
export type { MinFree } from "./disk-space";
export type { JobEnvironment } from "./environment";
export { type ErrorCode, type ErrorReason, JobberError } from "./errors";
export { formatBytes } from "./format-bytes";
export { checkLogOffset, describeStatus, type Job, type JobInfo } from "./job";
export {
  JOBBER_DEFAULTS,
  type Jobber,
  type JobberOptions,
  type JobberStats,
  type JobEnded,
  openJobber,
} from "./jobber";
export {
  DEFAULT_LIMITS,
  type Limits,
  type MaxLimits,
  type ResolvedLimits,
  type TenantQuotas,
} from "./limits";
export { type PoolCertificate, readPool } from "./pool";
export { ensurePrivateDir } from "./private-dir";
export type { JobState, JobStatus } from "./status";
