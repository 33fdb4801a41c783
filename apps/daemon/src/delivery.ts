// When the bytes of an answer have really left the daemon. grpc-js (on
// Bun's HTTP/2) reports a call over once its answer is queued on the
// connection, however little of it the client has read: a client that
// grants large flow-control windows and never reads leaves a 64 MiB log
// snapshot in the daemon's memory after the call has "ended". An HTTP/2
// PING sent after the answer can only be acknowledged once the client has
// read every byte queued before it, so its acknowledgement (or the end of
// the connection) is the moment the answer's memory is free.
import type { ServerSurfaceCall } from "./server-call";

/** The part of an HTTP/2 session this needs (node:http2's ServerHttp2Session). */
interface PingableSession {
  ping(callback: (error: Error | null) => void): boolean;
  once(event: "close", listener: () => void): unknown;
  readonly closed: boolean;
  readonly destroyed: boolean;
}

/**
 * One PING in flight per connection: answers queued while it flies wait
 * for the next one, which leaves when it comes back.
 */
class SessionDelivery {
  private flying: (() => void)[] | undefined;
  private waiting: (() => void)[] = [];
  private closed = false;

  constructor(private readonly session: PingableSession) {
    session.once("close", () => {
      this.closed = true;
      this.settle([...(this.flying ?? []), ...this.waiting]);
      this.flying = undefined;
      this.waiting = [];
    });
  }

  /** Resolves once everything queued on the connection so far has been read by the client. */
  delivered(): Promise<void> {
    if (this.closed || this.session.closed || this.session.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      if (!this.flying) this.ping();
    });
  }

  private ping(): void {
    this.flying = this.waiting;
    this.waiting = [];
    let sent = false;
    try {
      sent = this.session.ping(() => {
        // Acknowledged, or cancelled because the connection went: either way the bytes are gone.
        const covered = this.flying ?? [];
        this.flying = undefined;
        this.settle(covered);
        if (this.waiting.length > 0 && !this.closed) this.ping();
      });
    } catch {
      // A session already shutting down: its close settles everyone.
    }
    // Not sent (too many PINGs outstanding): the next answer tries again, the connection's close settles them.
    if (!sent) {
      this.waiting.unshift(...(this.flying ?? []));
      this.flying = undefined;
    }
  }

  private settle(waiters: (() => void)[]): void {
    for (const resolve of waiters) resolve();
  }
}

const deliveries = new WeakMap<PingableSession, SessionDelivery>();

/**
 * The HTTP/2 session under a grpc-js server call. grpc-js keeps it private
 * (ServerUnaryCallImpl.call is the ServerInterceptingCall, whose .stream
 * is the node:http2 stream); undefined if that ever changes.
 */
function sessionOf(call: ServerSurfaceCall): PingableSession | undefined {
  const session = (call as unknown as { call?: { stream?: { session?: unknown } } }).call?.stream?.session;
  return session && typeof (session as PingableSession).ping === "function"
    ? (session as PingableSession)
    : undefined;
}

/** Resolves once what was queued on the call's connection has been read by its client (or the connection is gone). */
export function whenDelivered(call: ServerSurfaceCall): Promise<void> {
  const session = sessionOf(call);
  // Without the session, the end of the call is the best there is.
  if (!session) return Promise.resolve();
  let delivery = deliveries.get(session);
  if (!delivery) {
    delivery = new SessionDelivery(session);
    deliveries.set(session, delivery);
  }
  return delivery.delivered();
}
