// GetJobLog answers with the whole log in one message, so each snapshot in
// flight holds its log's size (twice, while it is encoded) until the client
// has taken it. The snapshots of all tenants share one budget of bytes:
// past it a snapshot waits its turn (first come, first served), and one
// tenant may hold at most its share, so that a tenant whose snapshots are
// never read cannot make everyone else's wait for ever.
import { status } from "@grpc/grpc-js";
import { formatBytes } from "@jobber/jobber";
import { RpcError } from "./status-codes";

interface Waiter {
  tenant: string;
  bytes: number;
  grant: () => void;
}

export class SnapshotBudget {
  private held = 0;
  private readonly heldByTenant = new Map<string, number>();
  private readonly queue: Waiter[] = [];

  constructor(
    /** Bytes all snapshots in flight may hold together. */
    readonly totalBytes: number,
    /** Bytes one tenant's snapshots may hold together (waiting ones included). */
    readonly tenantBytes: number,
  ) {}

  /**
   * Reserves `bytes` for the tenant, waiting while the budget is full. The
   * returned function gives them back. Throws RESOURCE_EXHAUSTED when the
   * tenant's share cannot take them; rejects with `signal`'s reason if it
   * aborts while waiting.
   */
  async reserve(tenant: string, bytes: number, signal: AbortSignal): Promise<() => void> {
    const tenantHeld = this.heldByTenant.get(tenant) ?? 0;
    if (tenantHeld + bytes > this.tenantBytes) {
      throw new RpcError(
        status.RESOURCE_EXHAUSTED,
        `your log snapshots in progress hold ${formatBytes(tenantHeld)} and this one needs ${formatBytes(bytes)}: one tenant's snapshots may hold ${formatBytes(this.tenantBytes)} of jobberd's memory at once; retry when they are done, or stream the log with FollowJobLog (jb log -f)`,
      );
    }
    // Counted against the tenant while it waits, so its share bounds its queue too.
    this.heldByTenant.set(tenant, tenantHeld + bytes);
    try {
      await this.waitForTurn(tenant, bytes, signal);
    } catch (error) {
      this.untrack(tenant, bytes);
      throw error;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held -= bytes;
      this.untrack(tenant, bytes);
      this.grantWaiting();
    };
  }

  /** Bytes reserved now (for tests and metrics). */
  get reservedBytes(): number {
    return this.held;
  }

  private waitForTurn(tenant: string, bytes: number, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        tenant,
        bytes,
        grant: () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        this.queue.splice(this.queue.indexOf(waiter), 1);
        reject(signal.reason);
        // Those behind it may fit now.
        this.grantWaiting();
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.queue.push(waiter);
      this.grantWaiting();
    });
  }

  private grantWaiting(): void {
    for (;;) {
      const next = this.queue[0];
      // A snapshot larger than the whole budget goes alone.
      if (!next || (this.held > 0 && this.held + next.bytes > this.totalBytes)) return;
      this.queue.shift();
      this.held += next.bytes;
      next.grant();
    }
  }

  private untrack(tenant: string, bytes: number): void {
    const left = (this.heldByTenant.get(tenant) ?? 0) - bytes;
    if (left > 0) this.heldByTenant.set(tenant, left);
    else this.heldByTenant.delete(tenant);
  }
}
