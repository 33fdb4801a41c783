// The jobber.v1 client over mutual TLS, for the CLI, tests and benchmarks: a
// promise per unary call, an async iterable of bytes for FollowJobLog. Failed
// calls reject with grpc-js's ServiceError (`code`, `details`).
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import { checkServerIdentity, createSecureContext } from "node:tls";
import { create, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import {
  type CallOptions,
  type ChannelOptions,
  Client,
  credentials,
  Metadata,
  type MethodDefinition,
  type VerifyOptions,
} from "@grpc/grpc-js";
import {
  FollowJobLogRequestSchema,
  GetJobLogRequestSchema,
  type GetJobLogResponse,
  GetJobRequestSchema,
  type GetJobResponse,
  GetJobsRequestSchema,
  type GetJobsResponse,
  RemoveJobRequestSchema,
  type RemoveJobResponse,
  StartJobRequestSchema,
  type StartJobResponse,
  StopJobRequestSchema,
  type StopJobResponse,
} from "../gen/jobber/v1/jobber_pb";
// index.ts re-exports this module; the cycle is harmless because
// jobServiceDefinition is only read when a call is made, never at load time.
import { jobServiceDefinition } from "./index";

/** PEM material of a client. Each field given replaces the home's file. */
export interface ClientIdentity {
  /** The client certificate; without it the server answers UNAUTHENTICATED. */
  cert?: Buffer | string;
  /** The client certificate's private key. */
  key?: Buffer | string;
  /** The CA certificate(s) that the server's certificate must chain to. */
  ca?: Buffer | string;
}

export interface ConnectOptions {
  /** The server, as host:port. */
  addr: string;
  /** A jobber home holding client.crt, client.key and ca.crt. */
  home?: string;
  /** Explicit PEM material, used instead of the home's files it names. */
  identity?: ClientIdentity;
  /** The name to check the server certificate against when it is not addr's host. */
  serverName?: string;
}

export interface CallSettings {
  /** Aborting cancels the call; the promise or iteration then rejects with the signal's reason. */
  signal?: AbortSignal;
  deadline?: Date;
}

type Init<Schema extends DescMessage> = MessageInitShape<Schema>;

export interface JobClient {
  startJob(request: Init<typeof StartJobRequestSchema>, settings?: CallSettings): Promise<StartJobResponse>;
  getJobs(request?: Init<typeof GetJobsRequestSchema>, settings?: CallSettings): Promise<GetJobsResponse>;
  getJob(request: Init<typeof GetJobRequestSchema>, settings?: CallSettings): Promise<GetJobResponse>;
  getJobLog(
    request: Init<typeof GetJobLogRequestSchema>,
    settings?: CallSettings,
  ): Promise<GetJobLogResponse>;
  stopJob(request: Init<typeof StopJobRequestSchema>, settings?: CallSettings): Promise<StopJobResponse>;
  removeJob(
    request: Init<typeof RemoveJobRequestSchema>,
    settings?: CallSettings,
  ): Promise<RemoveJobResponse>;
  /**
   * The job's output as it is written, until the job ends. Stopping the
   * iteration (break, return) or aborting the signal cancels the call.
   */
  followJobLog(
    request: Init<typeof FollowJobLogRequestSchema>,
    settings?: CallSettings,
  ): AsyncIterable<Uint8Array>;
  /** Closes the connection; calls still running are cancelled. */
  close(): void;
}

/** Room for jobberd's largest answer: a 64 MiB log snapshot and its framing. */
const MAX_RESPONSE_BYTES = 65 * 1024 * 1024;

/** A client identity that cannot be used: a missing or unreadable file. */
export class ClientIdentityError extends Error {
  override readonly name = "ClientIdentityError";
}

/** Reads the identity in `home` (client.crt, client.key, ca.crt), letting `explicit` replace any of them. */
export function loadClientIdentity(home: string | undefined, explicit: ClientIdentity = {}): ClientIdentity {
  const fromHome = (file: string) => {
    if (home === undefined) return undefined;
    const path = join(home, file);
    try {
      return readFileSync(path);
    } catch (error) {
      const reason =
        (error as NodeJS.ErrnoException).code === "ENOENT" ? "not found" : (error as Error).message;
      throw new ClientIdentityError(
        `${path}: ${reason}; a client home needs client.crt, client.key and ca.crt (jobberd creates a first one in its home)`,
      );
    }
  };
  return {
    cert: explicit.cert ?? fromHome("client.crt"),
    key: explicit.key ?? fromHome("client.key"),
    ca: explicit.ca ?? fromHome("ca.crt"),
  };
}

/**
 * A grpc-js channel to jobberd at `addr`, over TLS 1.3 with the client
 * certificate. `connectJobService` wraps it in typed calls; tests use it to
 * send what no well-behaved client would.
 */
export function openJobServiceChannel(options: ConnectOptions): Client {
  const identity = loadClientIdentity(options.home, options.identity);
  // A SecureContext is the only way grpc-js lets us set the protocol version on
  // the client; with it, grpc-js applies nothing of its own (no cipher list).
  const secureContext = createSecureContext({
    minVersion: "TLSv1.3",
    ecdhCurve: "X25519:P-256",
    cert: identity.cert,
    key: identity.key,
    ca: identity.ca,
  });
  const { channelOptions, verifyOptions } = serverNameOptions(options.serverName ?? hostOf(options.addr));
  return new Client(options.addr, credentials.createFromSecureContext(secureContext, verifyOptions), {
    ...channelOptions,
    // GetJobLog answers with up to 64 MiB in one message (the daemon refuses more).
    "grpc.max_receive_message_length": MAX_RESPONSE_BYTES,
  });
}

/** A client of jobber.v1.JobService at `addr`, over TLS 1.3 with the client certificate. */
export function connectJobService(options: ConnectOptions): JobClient {
  const client = openJobServiceChannel(options);
  const definition = jobServiceDefinition;

  return {
    startJob: (request, settings) =>
      unary(client, definition.startJob, StartJobRequestSchema, request, settings),
    getJobs: (request = {}, settings) =>
      unary(client, definition.getJobs, GetJobsRequestSchema, request, settings),
    getJob: (request, settings) => unary(client, definition.getJob, GetJobRequestSchema, request, settings),
    getJobLog: (request, settings) =>
      unary(client, definition.getJobLog, GetJobLogRequestSchema, request, settings),
    stopJob: (request, settings) =>
      unary(client, definition.stopJob, StopJobRequestSchema, request, settings),
    removeJob: (request, settings) =>
      unary(client, definition.removeJob, RemoveJobRequestSchema, request, settings),
    followJobLog: (request, settings) => followLog(client, request, settings),
    close: () => client.close(),
  };
}

/** The host part of a plain host:port (or [v6]:port) address; undefined for a grpc URI such as dns:///… */
function hostOf(addr: string): string | undefined {
  const match = /^\[([^\]]+)\](?::\d+)?$/.exec(addr) ?? /^([^:/[\]]+)(?::\d+)?$/.exec(addr);
  return match?.[1];
}

/**
 * grpc-js sends the target's host as TLS server name (SNI) and checks the
 * certificate against it. Bun's tls.connect refuses an IP address as server
 * name ("Setting the TLS ServerName to an IP address is not permitted", RFC
 * 6066), so for an IP we send a placeholder name and check the certificate's
 * IP SANs against the real address ourselves.
 */
function serverNameOptions(expectedName: string | undefined): {
  channelOptions: ChannelOptions;
  verifyOptions: VerifyOptions;
} {
  if (expectedName === undefined) return { channelOptions: {}, verifyOptions: {} };
  if (isIP(expectedName) === 0) {
    return { channelOptions: { "grpc.ssl_target_name_override": expectedName }, verifyOptions: {} };
  }
  return {
    channelOptions: { "grpc.ssl_target_name_override": "localhost" },
    verifyOptions: { checkServerIdentity: (_sentName, cert) => checkServerIdentity(expectedName, cert) },
  };
}

function callOptions(settings: CallSettings | undefined): CallOptions {
  return settings?.deadline ? { deadline: settings.deadline } : {};
}

function unary<Input extends DescMessage, Response>(
  client: Client,
  method: MethodDefinition<MessageShape<Input>, Response>,
  inputSchema: Input,
  init: MessageInitShape<Input>,
  settings: CallSettings | undefined,
): Promise<Response> {
  const signal = settings?.signal;
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => call.cancel();
    const call = client.makeUnaryRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      create(inputSchema, init),
      new Metadata(),
      callOptions(settings),
      (error, response) => {
        signal?.removeEventListener("abort", onAbort);
        if (signal?.aborted) reject(signal.reason);
        else if (error) reject(error);
        else resolve(response as Response);
      },
    );
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

async function* followLog(
  client: Client,
  init: MessageInitShape<typeof FollowJobLogRequestSchema>,
  settings: CallSettings | undefined,
): AsyncGenerator<Uint8Array, void, undefined> {
  const signal = settings?.signal;
  signal?.throwIfAborted();
  const method = jobServiceDefinition.followJobLog;
  const call = client.makeServerStreamRequest(
    method.path,
    method.requestSerialize,
    method.responseDeserialize,
    create(FollowJobLogRequestSchema, init),
    new Metadata(),
    callOptions(settings),
  );
  const onAbort = () => call.cancel();
  signal?.addEventListener("abort", onAbort, { once: true });
  let ended = false;
  try {
    for await (const message of call) yield message.data;
    ended = true;
  } catch (error) {
    ended = true;
    // Our own cancel() ends the stream with a CANCELLED status; report the abort as the signal does.
    if (signal?.aborted) throw signal.reason;
    throw error;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    if (!ended) {
      // The consumer stopped early. The stream's iterator no longer listens, so
      // the CANCELLED status that cancel() brings must not become an uncaught 'error'.
      call.on("error", () => {});
      call.cancel();
    }
  }
}
