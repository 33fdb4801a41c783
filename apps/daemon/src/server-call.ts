// What every server call shares (peer, metadata, deadline, "cancelled"),
// whatever its kind. grpc-js has a type for it, ServerSurfaceCall, but does
// not export it; the four kinds of call it is part of are public.
import type {
  ServerDuplexStream,
  ServerReadableStream,
  ServerUnaryCall,
  ServerWritableStream,
} from "@grpc/grpc-js";

export type ServerSurfaceCall =
  | ServerUnaryCall<unknown, unknown>
  | ServerReadableStream<unknown, unknown>
  | ServerWritableStream<unknown, unknown>
  | ServerDuplexStream<unknown, unknown>;
