// The jobber.v1 API for grpc-js: the generated messages plus a grpc-js service
// definition derived from the generated descriptor, so that no message or
// method is described twice.
import { type DescMessage, fromBinary, type MessageShape, toBinary } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import type {
  handleBidiStreamingCall,
  handleClientStreamingCall,
  handleServerStreamingCall,
  handleUnaryCall,
  MethodDefinition,
  ServiceDefinition,
} from "@grpc/grpc-js";
import { JobService } from "../gen/jobber/v1/jobber_pb";

export * from "../gen/jobber/v1/jobber_pb";

type Methods = typeof JobService extends GenService<infer M> ? M : never;

/** The grpc-js definition of one method of `JobService`, typed by its messages. */
export type JobServiceMethod<K extends keyof Methods> = MethodDefinition<
  MessageShape<Methods[K]["input"]>,
  MessageShape<Methods[K]["output"]>
>;

export type JobServiceDefinition = { [K in keyof Methods]: JobServiceMethod<K> };

type Handler<M extends Methods[keyof Methods]> = {
  unary: handleUnaryCall<MessageShape<M["input"]>, MessageShape<M["output"]>>;
  server_streaming: handleServerStreamingCall<MessageShape<M["input"]>, MessageShape<M["output"]>>;
  client_streaming: handleClientStreamingCall<MessageShape<M["input"]>, MessageShape<M["output"]>>;
  bidi_streaming: handleBidiStreamingCall<MessageShape<M["input"]>, MessageShape<M["output"]>>;
}[M["methodKind"]];

/**
 * A server's implementation of `JobService`, for `Server#addService` with
 * `jobServiceDefinition`: a handler of the right kind and messages for every
 * method, so a missing or mistyped one does not compile.
 */
export type JobServiceImplementation = { [K in keyof Methods]: Handler<Methods[K]> };

function serializer<Desc extends DescMessage>(schema: Desc) {
  return {
    // A Buffer view of the encoded bytes, not a copy: a 64 MiB log snapshot is copied often enough.
    serialize: (message: MessageShape<Desc>) => {
      const bytes = toBinary(schema, message);
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },
    deserialize: (bytes: Uint8Array) => fromBinary(schema, bytes),
  };
}

/**
 * A response written to many streams (a log chunk to every follower of a
 * job) is encoded once. Responses are never changed after they are written.
 */
function encodedOnce<T extends object>(serialize: (message: T) => Buffer): (message: T) => Buffer {
  const encoded = new WeakMap<T, Buffer>();
  return (message) => {
    let bytes = encoded.get(message);
    if (!bytes) {
      bytes = serialize(message);
      encoded.set(message, bytes);
    }
    return bytes;
  };
}

function toGrpcDefinition<M extends GenServiceMethods>(service: GenService<M>) {
  const definition: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    const input = serializer(method.input);
    const output = serializer(method.output);
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      originalName: method.name,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: input.serialize as (value: unknown) => Buffer,
      requestDeserialize: input.deserialize,
      responseSerialize: encodedOnce(output.serialize) as (value: unknown) => Buffer,
      responseDeserialize: output.deserialize,
    };
  }
  return definition;
}

/** `jobber.v1.JobService` for `Server#addService` and `makeGenericClientConstructor`. */
export const jobServiceDefinition = toGrpcDefinition(JobService) as unknown as JobServiceDefinition &
  ServiceDefinition;
export * from "./client";
export * from "./status";
