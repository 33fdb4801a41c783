// GetJobLog answers with the whole log in one message, so each snapshot in
// flight holds its log's size (several times over, while it is read,
// encoded and framed) until the client has taken it. The snapshots of all
// tenants share one budget of bytes, and one tenant may hold at most its
// share of it: past either, a snapshot waits its turn. So a tenant whose
// snapshots are never read holds its share and waits behind itself, while
// others go on; and a tenant may keep only so many snapshots waiting.
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
  private readonly waitingByTenant = new Map<string, number>();
  private readonly queue: Waiter[] = [];

  constructor(
    /** Bytes all snapshots in flight may hold together. */
    readonly totalBytes: number,
    /** Bytes one tenant's snapshots in flight may hold together. */
    readonly tenantBytes: number,
    /** Snapshots one tenant may have waiting for room. */
    readonly tenantWaiting: number,
  ) {}

  /**
   * Reserves `bytes` for the tenant, waiting (first come, first served)
   * while the budget or the tenant's share has no room. The returned
   * function gives them back. Throws RESOURCE_EXHAUSTED when the tenant
   * already has `tenantWaiting` snapshots waiting; rejects with `signal`'s
   * reason if it aborts while waiting.
   */
  async reserve(tenant: string, bytes: number, signal: AbortSignal): Promise<() => void> {
    signal.throwIfAborted();
    const waiting = this.waitingByTenant.get(tenant) ?? 0;
    if (waiting >= this.tenantWaiting) {
      throw new RpcError(
        status.RESOURCE_EXHAUSTED,
        `${waiting} of your log snapshots are waiting for room (one tenant's snapshots may hold ${formatBytes(this.tenantBytes)} of jobberd's memory at once, and ${this.tenantWaiting} may wait): retry when they are done, or stream the log with FollowJobLog (jb log -f)`,
      );
    }
    await this.waitForTurn(tenant, bytes, signal);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held -= bytes;
      this.add(this.heldByTenant, tenant, -bytes);
      this.grantWaiting();
    };
  }

  /** Bytes reserved now (for tests and metrics). */
  get reservedBytes(): number {
    return this.held;
  }

  private waitForTurn(tenant: string, bytes: number, signal: AbortSignal): Promise<void> {
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
        this.add(this.waitingByTenant, tenant, -1);
        reject(signal.reason);
        // Those behind it may go now.
        this.grantWaiting();
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.queue.push(waiter);
      this.add(this.waitingByTenant, tenant, +1);
      this.grantWaiting();
    });
  }

  /**
   * Grants waiters in order. One that does not fit the budget stops the
   * queue (those behind it wait, so that a large snapshot is not starved by
   * small ones); one whose tenant's share is full is passed over, so that a
   * tenant holding its share does not hold up the others. A snapshot larger
   * than the budget or the share goes alone.
   */
  private grantWaiting(): void {
    for (let i = 0; i < this.queue.length; ) {
      const next = this.queue[i] as Waiter;
      const tenantHeld = this.heldByTenant.get(next.tenant) ?? 0;
      if (tenantHeld > 0 && tenantHeld + next.bytes > this.tenantBytes) {
        i++;
        continue;
      }
      if (this.held > 0 && this.held + next.bytes > this.totalBytes) return;
      this.queue.splice(i, 1);
      this.add(this.waitingByTenant, next.tenant, -1);
      this.held += next.bytes;
      this.add(this.heldByTenant, next.tenant, next.bytes);
      next.grant();
    }
  }

  private add(counts: Map<string, number>, tenant: string, change: number): void {
    const value = (counts.get(tenant) ?? 0) + change;
    if (value > 0) counts.set(tenant, value);
    else counts.delete(tenant);
  }
}
