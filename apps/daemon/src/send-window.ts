// How much of a stream's output the daemon holds for a client that reads
// slowly, or not at all. grpc-js's write() returns false past its high-water
// mark but still takes (and keeps) every message handed to it: its writable
// buffers 16 messages, and the HTTP/2 stream under it what flow control has
// not let out. So the daemon counts the bytes it handed over and not yet
// seen leave (each write's callback), and hands no more while that is at the
// window: a follower that never reads holds one window of memory, however
// much its job writes.
import type { ServerWritableStream } from "@grpc/grpc-js";

export class SendWindow {
  private unsent = 0;
  private wake: (() => void) | undefined;

  constructor(
    private readonly call: ServerWritableStream<unknown, unknown>,
    private readonly windowBytes: number,
    private readonly shutdown: AbortSignal,
  ) {}

  /**
   * Writes `message` (`bytes` long) once the window has room for it. A
   * message larger than the window goes alone. Resolves false when the
   * client is gone or the daemon is shutting down.
   */
  async send(message: unknown, bytes: number): Promise<boolean> {
    while (this.unsent > 0 && this.unsent + bytes > this.windowBytes) {
      if (!(await this.roomOrEnd())) return false;
    }
    if (this.ended()) return false;
    this.unsent += bytes;
    this.call.write(message, () => {
      this.unsent -= bytes;
      this.wakeUp();
    });
    return true;
  }

  private ended(): boolean {
    return this.call.cancelled || this.call.destroyed || this.shutdown.aborted;
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** Waits for a write to leave, the client to go, or shutdown; true when there may be room. */
  private roomOrEnd(): Promise<boolean> {
    if (this.ended()) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = () => {
        this.call.off("cancelled", done);
        this.call.off("close", done);
        this.shutdown.removeEventListener("abort", done);
        this.wake = undefined;
        resolve(!this.ended());
      };
      this.wake = done;
      this.call.on("cancelled", done);
      this.call.on("close", done);
      this.shutdown.addEventListener("abort", done, { once: true });
    });
  }
}
