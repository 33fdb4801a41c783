// grpc.reflection.v1 and v1alpha (@grpc/reflection), so that grpcurl and
// `buf curl` work without a copy of the schema. The descriptors are the ones
// protobuf-es generated from proto/, byte for byte what the service speaks.
// Like JobService, it answers only clients whose certificate is in the pool.
import { toBinary } from "@bufbuild/protobuf";
import type { GenFile } from "@bufbuild/protobuf/codegenv2";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import {
  type Server,
  type ServerDuplexStream,
  status,
  type UntypedHandleCall,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import type { Certificate } from "@jobber/jobber";
import type { RequestLog } from "./request-log";
import type { ServerSurfaceCall } from "./server-call";
import { toServiceError } from "./status-codes";

/** The package definition @grpc/reflection reads: the serialized descriptors of `files` and their imports. */
function packageDefinition(files: GenFile[]): ConstructorParameters<typeof ReflectionService>[0] {
  const all = new Map<string, GenFile>();
  const visit = (file: GenFile) => {
    if (all.has(file.name)) return;
    all.set(file.name, file);
    for (const dependency of file.dependencies) visit(dependency);
  };
  for (const file of files) visit(file);
  const fileDescriptorProtos = [...all.values()].map((file) =>
    Buffer.from(toBinary(FileDescriptorProtoSchema, file.proto)),
  );
  // Only `fileDescriptorProtos` is read; one entry carries every file.
  return { descriptors: { fileDescriptorProtos } } as unknown as ConstructorParameters<
    typeof ReflectionService
  >[0];
}

export function addReflectionService(
  server: Server,
  files: GenFile[],
  authenticate: (call: ServerSurfaceCall) => Certificate,
  log: RequestLog,
): void {
  const reflection = new ReflectionService(packageDefinition(files));
  reflection.addToServer({
    addService(definition, implementation: UntypedServiceImplementation) {
      const guarded: UntypedServiceImplementation = {};
      for (const [name, handler] of Object.entries(implementation)) {
        guarded[name] = ((call: ServerDuplexStream<unknown, unknown>) => {
          const started = performance.now();
          let tenant: Certificate;
          try {
            tenant = authenticate(call);
          } catch (error) {
            const refusal = toServiceError(error);
            log.request(undefined, "ServerReflectionInfo", refusal.code, started, refusal.details);
            call.emit("error", refusal);
            return;
          }
          call.on("finish", () => log.request(tenant, "ServerReflectionInfo", status.OK, started));
          (handler as (call: ServerDuplexStream<unknown, unknown>) => void)(call);
        }) as UntypedHandleCall;
      }
      server.addService(definition, guarded);
    },
  });
}
