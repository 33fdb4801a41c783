// Clients that try to make jobberd hold memory for them, and the daemon's
// memory measured from /proc: the benchmark reports what they cost
// (bench/abuse.ts), the tests bound it (apps/daemon/test/memory.test.ts).
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect as connectTls, type TLSSocket } from "node:tls";
import { create, toBinary } from "@bufbuild/protobuf";
import {
  FollowJobLogRequestSchema,
  GetJobLogRequestSchema,
  type JobClient,
  jobServiceDefinition,
} from "../proto/src/index.ts";

/** A jobberd to abuse: where it listens, whose identity to use, its process. */
export interface Target {
  address: string;
  /** A client home (client.crt, client.key, ca.crt). */
  home: string;
  pid: number;
}

const MB = 1024 * 1024;

function statusKiB(pid: number, field: "VmRSS" | "VmHWM"): number {
  const match = new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(match?.[1]);
}

/** Resident memory now, in MiB. */
export function rssMiB(pid: number): number {
  return statusKiB(pid, "VmRSS") / 1024;
}

/** The highest resident memory since the last resetPeakRss, in MiB (the kernel keeps it: no sampling). */
export function peakRssMiB(pid: number): number {
  return statusKiB(pid, "VmHWM") / 1024;
}

/** Starts a new peak: the kernel's high-water mark is set back to the RSS now. */
export function resetPeakRss(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, "5");
}

/**
 * Resident memory once the daemon has done what it will do: a round trip
 * after another (each one a turn of its event loop behind the work already
 * queued) until its RSS has not grown for `quiet` of them in a row.
 */
export async function settledRssMiB(
  pid: number,
  roundTrip: () => Promise<unknown>,
  quiet = 20,
): Promise<number> {
  let highest = rssMiB(pid);
  let still = 0;
  for (let trips = 0; trips < 1000 && still < quiet; trips++) {
    await roundTrip();
    const now = rssMiB(pid);
    if (now > highest + 0.5) {
      highest = now;
      still = 0;
    } else {
      still++;
    }
  }
  return highest;
}

/** An HTTP/2 frame: 9 bytes of header, then the payload. */
function frame(type: number, flags: number, stream: number, payload: Uint8Array): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(stream, 5);
  return Buffer.concat([header, payload]);
}

/** An HPACK header field, literal, not indexed, with a literal name (RFC 7541 §6.2.2). */
function headerField(name: string, value: string): Buffer {
  return Buffer.concat([
    Buffer.from([0x00, name.length]),
    Buffer.from(name),
    Buffer.from([value.length]),
    Buffer.from(value),
  ]);
}

const FRAME = { DATA: 0, HEADERS: 1, SETTINGS: 4, WINDOW_UPDATE: 8 } as const;
const MAX_WINDOW = 0x7fffffff;

/**
 * The worst reader there is: a client that speaks just enough HTTP/2 to
 * make `streams` calls of `method` with `request` on one connection, grants
 * the server every flow-control window it can (2 GiB per stream and for the
 * connection), and then never reads a byte. Only the daemon's own bounds
 * (and the kernel's socket buffers) stop it from sending.
 */
function neverReadingConnection(
  target: Target,
  method: { path: string },
  request: Uint8Array,
  streams: number,
): Promise<TLSSocket> {
  const at = target.address.lastIndexOf(":");
  return new Promise((resolve, reject) => {
    const socket = connectTls({
      host: target.address.slice(0, at),
      port: Number(target.address.slice(at + 1)),
      servername: "localhost",
      ALPNProtocols: ["h2"],
      minVersion: "TLSv1.3",
      ca: readFileSync(join(target.home, "ca.crt")),
      cert: readFileSync(join(target.home, "client.crt")),
      key: readFileSync(join(target.home, "client.key")),
    });
    socket.once("error", reject);
    socket.once("secureConnect", () => {
      const initialWindow = Buffer.alloc(6);
      initialWindow.writeUInt16BE(0x4, 0); // SETTINGS_INITIAL_WINDOW_SIZE
      initialWindow.writeUInt32BE(MAX_WINDOW, 2);
      const connectionWindow = Buffer.alloc(4);
      connectionWindow.writeUInt32BE(MAX_WINDOW - 65_535, 0);
      const message = Buffer.alloc(5 + request.length); // gRPC: uncompressed, 4-byte length
      message.writeUInt32BE(request.length, 1);
      message.set(request, 5);
      const headers = Buffer.concat([
        headerField(":method", "POST"),
        headerField(":scheme", "https"),
        headerField(":path", method.path),
        headerField(":authority", "localhost"),
        headerField("content-type", "application/grpc"),
        headerField("te", "trailers"),
      ]);
      const frames = [
        Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        frame(FRAME.SETTINGS, 0, 0, initialWindow),
        // The server's SETTINGS are acknowledged unseen: reading them would be reading.
        frame(FRAME.SETTINGS, 0x1, 0, Buffer.alloc(0)),
        frame(FRAME.WINDOW_UPDATE, 0, 0, connectionWindow),
      ];
      for (let i = 0; i < streams; i++) {
        const stream = 1 + 2 * i;
        frames.push(frame(FRAME.HEADERS, 0x4 /* END_HEADERS */, stream, headers));
        frames.push(frame(FRAME.DATA, 0x1 /* END_STREAM */, stream, message));
      }
      socket.write(Buffer.concat(frames));
      socket.pause(); // and never resume
      socket.off("error", reject);
      socket.on("error", () => {});
      resolve(socket);
    });
  });
}

/** `count` calls of `method` with `request` that are never read, `perConnection` to a connection. */
export async function neverReadingCalls(
  target: Target,
  method: { path: string },
  request: Uint8Array,
  count: number,
  perConnection: number,
) {
  const sockets: TLSSocket[] = [];
  for (let made = 0; made < count; made += perConnection) {
    sockets.push(
      await neverReadingConnection(target, method, request, Math.min(perConnection, count - made)),
    );
  }
  return {
    close() {
      for (const socket of sockets) socket.destroy();
    },
  };
}

/** `count` FollowJobLog streams of the job, from its first byte, that never read. */
export function stalledFollowers(target: Target, jobId: bigint, count: number, perConnection = 20) {
  const request = toBinary(FollowJobLogRequestSchema, create(FollowJobLogRequestSchema, { jobId }));
  return neverReadingCalls(target, jobServiceDefinition.followJobLog, request, count, perConnection);
}

/** `count` GetJobLog calls of the job whose answers are never read, on one connection. */
export function stalledSnapshots(target: Target, jobId: bigint, count: number) {
  const request = toBinary(GetJobLogRequestSchema, create(GetJobLogRequestSchema, { jobId }));
  return neverReadingCalls(target, jobServiceDefinition.getJobLog, request, count, count);
}

/** `count` GetJobLog calls at once over `clients`; each resolves to the log's length or the status code. */
export function concurrentSnapshots(clients: JobClient[], jobId: bigint, count: number) {
  return Promise.all(
    Array.from({ length: count }, (_, i) =>
      (clients[i % clients.length] as JobClient).getJobLog({ jobId }).then(
        ({ log }) => ({ bytes: log.length }),
        (error: { code: number; details: string }) => ({ code: error.code, details: error.details }),
      ),
    ),
  );
}

export const MiB = MB;
