// Loaded into jobberd by the bench alone (`bun --preload`, bench/daemon.ts),
// never by jobberd itself: it tells the bench, over the IPC channel Bun
// opens to a bun child, what the bench would otherwise read from jobberd's
// log, whose wording and format are jobberd's to change:
//
// - the port jobberd bound (it listens on port 0, a free one);
// - how long each successful unary call spent in jobberd's handler, from
//   the handler's call to its answer: the span jobberd's request log times.
//   It leaves out what grpc-js does before and after (HTTP/2, TLS,
//   (de)serialisation), as the log does.
//
// It wraps grpc-js's Server.addService and Server.bindAsync, the public API
// through which every gRPC server registers handlers and listens. Its own
// cost is a clock read and an array push per call.
import {
  type handleUnaryCall,
  Server,
  type ServerCredentials,
  type ServiceDefinition,
  type sendUnaryData,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";

/** From jobberd to the bench. */
export type HookReport =
  | { type: "bound"; port: number }
  | { type: "serverTimes"; rpc: string; milliseconds: number[] };

/** From the bench to jobberd. */
export type HookQuery = { type: "serverTimes"; rpc: string };

if (!process.send) {
  throw new Error("bench/daemon-hook.ts reports over an IPC channel; only bench/daemon.ts loads it");
}
const report = (message: HookReport) => process.send?.(message);

/** Milliseconds per successful call, by method name ("StartJob"), oldest first. */
const serverTimes = new Map<string, number[]>();

process.on("message", (query: HookQuery) => {
  if (query.type !== "serverTimes") return;
  report({ type: "serverTimes", rpc: query.rpc, milliseconds: serverTimes.get(query.rpc) ?? [] });
});

function timed(rpc: string, handler: handleUnaryCall<unknown, unknown>): handleUnaryCall<unknown, unknown> {
  const samples: number[] = [];
  serverTimes.set(rpc, samples);
  return (call, callback) => {
    const started = performance.now();
    const answer: sendUnaryData<unknown> = (error, ...rest) => {
      if (!error) samples.push(performance.now() - started);
      callback(error, ...rest);
    };
    handler(call, answer);
  };
}

const addService = Server.prototype.addService;
Server.prototype.addService = function (
  this: Server,
  service: ServiceDefinition,
  implementation: UntypedServiceImplementation,
) {
  const wrapped: UntypedServiceImplementation = { ...implementation };
  for (const [name, method] of Object.entries(service)) {
    if (method.requestStream || method.responseStream) continue;
    // grpc-js looks a handler up by the definition's key, then by its originalName.
    const key = implementation[name] === undefined ? method.originalName : name;
    const handler = key === undefined ? undefined : implementation[key];
    if (key === undefined || handler === undefined) continue;
    const rpc = method.path.slice(method.path.lastIndexOf("/") + 1);
    // Bound as grpc-js would bind it: a handler may use `this`.
    wrapped[key] = timed(rpc, (handler as handleUnaryCall<unknown, unknown>).bind(implementation));
  }
  addService.call(this, service, wrapped);
};

const bindAsync = Server.prototype.bindAsync;
Server.prototype.bindAsync = function (
  this: Server,
  port: string,
  credentials: ServerCredentials,
  callback: (error: Error | null, port: number) => void,
) {
  bindAsync.call(this, port, credentials, (error, boundPort) => {
    // grpc-js serves from here on: the callback comes once it listens.
    if (!error) report({ type: "bound", port: boundPort });
    callback(error, boundPort);
  });
};
