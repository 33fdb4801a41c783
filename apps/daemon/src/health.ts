// grpc.health.v1.Health (grpc-health-check), for load balancers, Kubernetes
// gRPC probes and grpc_health_probe. It answers without a client
// certificate: the TLS handshake asks for one but does not require it
// (tls.ts), and this service, unlike every other, does not authenticate.
// A probe learns only whether jobberd serves.
import type {
  Server,
  ServerWritableStream,
  UntypedHandleCall,
  UntypedServiceImplementation,
} from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";

/** "" is the server as a whole, as the health protocol defines it. */
const SERVICES = ["", "jobber.v1.JobService"];

export interface HealthService {
  /** Reports NOT_SERVING to every check and watch, and ends the watches (shutdown). */
  stopServing(): void;
}

export function addHealthService(server: Server): HealthService {
  const health = new HealthImplementation(Object.fromEntries(SERVICES.map((name) => [name, "SERVING"])));
  const watches = new Set<ServerWritableStream<unknown, unknown>>();
  health.addToServer({
    addService(definition, implementation: UntypedServiceImplementation) {
      const watch = implementation.watch as
        | ((call: ServerWritableStream<unknown, unknown>) => void)
        | undefined;
      const tracked: UntypedServiceImplementation = { ...implementation };
      if (watch) {
        // Watches never end by themselves; shutdown must be able to end them.
        tracked.watch = ((call: ServerWritableStream<unknown, unknown>) => {
          watches.add(call);
          const forget = () => watches.delete(call);
          call.on("cancelled", forget);
          call.on("close", forget);
          watch(call);
        }) as UntypedHandleCall;
      }
      server.addService(definition, tracked);
    },
  });
  return {
    stopServing() {
      for (const name of SERVICES) health.setStatus(name, "NOT_SERVING");
      for (const call of watches) call.end();
      watches.clear();
    },
  };
}
