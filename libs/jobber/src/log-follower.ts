// Reading a job's log as it grows: an async iterator of byte chunks that
// reads to EOF, then sleeps until the log changes or the job ends. No timers,
// no polling: one fs.watch of the log per job, shared by all its followers,
// and so are the chunks they read: followers that move together (all of
// them, woken by the same write) read each chunk from the file once.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { type FileWatch, watchFile } from "./watch";

const CHUNK_BYTES = 64 * 1024;
/** Chunks kept for followers a little behind the first: at most 256 KiB per followed job. */
const SHARED_CHUNKS = 4;

interface Chunk {
  offset: number;
  bytes: Uint8Array;
}

/** Wakes the followers of one running job. */
export class LogSignal {
  /** Bumped on every change of the log and when the job ends. */
  version = 0;
  ended = false;
  private watcher: FileWatch | undefined;
  private subscribers = 0;
  private waiters = new Set<() => void>();
  /** The latest chunks read by any follower, newest last. */
  private recent: Chunk[] = [];

  constructor(private readonly logPath: string) {}

  /** A chunk another follower read from `offset`, if one is still kept. */
  sharedChunk(offset: number): Uint8Array | undefined {
    for (let i = this.recent.length - 1; i >= 0; i--) {
      const chunk = this.recent[i] as Chunk;
      if (chunk.offset === offset) return chunk.bytes;
    }
    return undefined;
  }

  /** Offers a chunk just read to the followers behind. */
  share(offset: number, bytes: Uint8Array): void {
    if (this.subscribers < 2) return;
    this.recent.push({ offset, bytes });
    if (this.recent.length > SHARED_CHUNKS) this.recent.shift();
  }

  subscribe(): () => void {
    if (this.subscribers++ === 0 && !this.ended) {
      this.watcher = watchFile(this.logPath, () => this.bump());
    }
    let subscribed = true;
    return () => {
      if (!subscribed) return;
      subscribed = false;
      if (--this.subscribers === 0) {
        this.stopWatching();
        this.recent = [];
      }
    };
  }

  /** Calls `wake` once at the next bump; returns a function that cancels it. */
  onNextChange(wake: () => void): () => void {
    this.waiters.add(wake);
    return () => this.waiters.delete(wake);
  }

  /** The job is over: wake everyone for a last read. */
  end(): void {
    this.ended = true;
    this.stopWatching();
    this.bump();
  }

  private bump(): void {
    this.version++;
    const waiters = this.waiters;
    this.waiters = new Set();
    for (const wake of waiters) wake();
  }

  private stopWatching(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }
}

/**
 * Follows a log from `offset` until the job ends (or at once to EOF when
 * `signal` is undefined: a finished job). `return()` — the consumer
 * stopping — releases the file and the watcher at once, even while waiting.
 */
export class LogFollower implements AsyncIterableIterator<Uint8Array> {
  private fd: number | undefined;
  private position: number;
  private closed = false;
  private unsubscribe: (() => void) | undefined;
  private wakeWaiting: (() => void) | undefined;

  constructor(
    logPath: string,
    offset: number,
    private readonly signal: LogSignal | undefined,
  ) {
    this.position = offset;
    this.fd = openSync(logPath, "r");
    this.unsubscribe = signal?.subscribe();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<Uint8Array>> {
    while (!this.closed) {
      const version = this.signal?.version;
      const ended = this.signal === undefined || this.signal.ended;
      const chunk = this.read();
      if (chunk) return { value: chunk, done: false };
      // EOF. If the job had ended before this read, nothing more can come.
      if (ended) break;
      if (this.signal?.version !== version) continue;
      await this.waitForChange();
    }
    return this.return();
  }

  async return(): Promise<IteratorResult<Uint8Array>> {
    if (!this.closed) {
      this.closed = true;
      this.unsubscribe?.();
      if (this.fd !== undefined) closeSync(this.fd);
      this.fd = undefined;
      this.wakeWaiting?.();
    }
    return { value: undefined, done: true };
  }

  async throw(error?: unknown): Promise<IteratorResult<Uint8Array>> {
    await this.return();
    throw error;
  }

  private read(): Uint8Array | undefined {
    if (this.fd === undefined) return undefined;
    const shared = this.signal?.sharedChunk(this.position);
    if (shared) {
      this.position += shared.length;
      return shared;
    }
    // Synchronous reads of a file in the page cache are cheaper than a trip
    // through the thread pool, and leave no read in flight when return() closes.
    // The buffer is sized to what the file holds: a line of output must not
    // cost a 64 KiB allocation (nor an empty read another), or a follower
    // of a chatty job makes the garbage collector pause the daemon.
    const available = fstatSync(this.fd).size - this.position;
    if (available <= 0) return undefined;
    const want = Math.min(CHUNK_BYTES, available);
    const buffer = Buffer.allocUnsafe(want);
    const bytes = readSync(this.fd, buffer, 0, want, this.position);
    if (bytes === 0) return undefined;
    const chunk = buffer.subarray(0, bytes);
    this.signal?.share(this.position, chunk);
    this.position += bytes;
    return chunk;
  }

  private waitForChange(): Promise<void> {
    const signal = this.signal as LogSignal;
    return new Promise<void>((resolve) => {
      const wake = () => {
        this.wakeWaiting = undefined;
        cancel();
        resolve();
      };
      const cancel = signal.onNextChange(wake);
      this.wakeWaiting = wake;
    });
  }
}
