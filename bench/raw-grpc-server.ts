// The transport baselines: a bare grpc-js server, in its own process like
// jobberd, with jobberd's TLS credentials and its FollowJobLog method
// definition (same path, same protobuf (de)serialisation). No
// authentication, no job library, no watchers: what is left is transport.
//
//   bun bench/raw-grpc-server.ts --home <jobberd home> --file <path>
//     streams the file in jobberd's 64 KiB chunks;
//   bun bench/raw-grpc-server.ts --home <jobberd home> --ticks <count>
//     sends <count> wall-clock timestamp lines, one every 10 ms, in the
//     format of the follow-latency writer (seconds.micros).
//
// Prints "listening on HOST:PORT" and serves until killed.
import { closeSync, openSync, readFileSync, readSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { create } from "@bufbuild/protobuf";
import { type handleServerStreamingCall, Server, type ServerWritableStream } from "@grpc/grpc-js";
import { createServerCredentials } from "../apps/daemon/src/tls.ts";
import {
  type FollowJobLogRequest,
  type FollowJobLogResponse,
  FollowJobLogResponseSchema,
  jobServiceDefinition,
} from "../proto/src/index.ts";
import { realtimeMicros } from "./clock";

/** The chunk size of jobberd's log reader (libs/jobber/src/log-follower.ts). */
const CHUNK_BYTES = 64 * 1024;

function writable(call: ServerWritableStream<unknown, unknown>): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      call.off("drain", done);
      call.off("cancelled", done);
      call.off("close", done);
      resolve();
    };
    call.on("drain", done);
    call.on("cancelled", done);
    call.on("close", done);
  });
}

const { values } = parseArgs({
  options: { home: { type: "string" }, file: { type: "string" }, ticks: { type: "string" } },
});
if (!values.home || (!values.file && !values.ticks)) {
  throw new Error("usage: raw-grpc-server.ts --home DIR (--file PATH | --ticks COUNT)");
}
const file = values.file ?? "";

const streamFile: handleServerStreamingCall<FollowJobLogRequest, FollowJobLogResponse> = (call) => {
  const stream = async () => {
    const fd = openSync(file, "r");
    try {
      let position = Number(call.request.offset);
      for (;;) {
        if (call.cancelled) return;
        const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
        const bytes = readSync(fd, buffer, 0, CHUNK_BYTES, position);
        if (bytes === 0) break;
        position += bytes;
        const data = buffer.subarray(0, bytes);
        if (!call.write(create(FollowJobLogResponseSchema, { data }))) await writable(call);
      }
      call.end();
    } finally {
      closeSync(fd);
    }
  };
  stream().catch((error) => call.emit("error", { code: 13, details: String(error) }));
};

const TICK_MS = 10;

const streamTicks: handleServerStreamingCall<FollowJobLogRequest, FollowJobLogResponse> = (call) => {
  let left = Number(values.ticks);
  const tick = () => {
    if (call.cancelled) return;
    if (left-- === 0) {
      call.end();
      return;
    }
    const micros = realtimeMicros();
    const line = `${Math.floor(micros / 1e6)}.${String(Math.floor(micros % 1e6)).padStart(6, "0")}\n`;
    call.write(create(FollowJobLogResponseSchema, { data: Buffer.from(line) }));
    setTimeout(tick, TICK_MS);
  };
  tick();
};

const followJobLog = values.ticks ? streamTicks : streamFile;
const server = new Server({ "grpc.max_receive_message_length": 4 * 1024 * 1024 });
server.addService({ followJobLog: jobServiceDefinition.followJobLog }, { followJobLog });
const credentials = createServerCredentials({
  key: readFileSync(join(values.home, "server.key")),
  cert: readFileSync(join(values.home, "server.crt")),
});
server.bindAsync("127.0.0.1:0", credentials, (error, port) => {
  if (error) throw error;
  console.log(`listening on 127.0.0.1:${port}`);
});
