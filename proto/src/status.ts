// The words of the wire that are not in the .proto: gRPC's status codes and
// the trailing-metadata keys jobberd adds to some of them. jobberd writes them
// and jb reads them, both from here.
export { status as Status } from "@grpc/grpc-js";

/** Trailing metadata: why, in one word (COMMAND_NOT_FOUND, NOT_EXECUTABLE, LOG_TOO_LARGE). */
export const REASON_KEY = "jobber-reason";

/** Trailing metadata of LOG_TOO_LARGE: the log's size, so a client can stream exactly that snapshot. */
export const LOG_BYTES_KEY = "jobber-log-bytes";
