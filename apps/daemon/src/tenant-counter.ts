// A per-tenant ceiling on something held open (follow streams): entering
// past it is RESOURCE_EXHAUSTED naming the quota and its value.
import { status } from "@grpc/grpc-js";
import { RpcError } from "./status-codes";

export class TenantCounter {
  private readonly held = new Map<string, number>();

  constructor(
    /** What is counted, for the message: "FollowJobLog streams". */
    private readonly what: string,
    /** The quota's setting name: "tenant-streams". */
    private readonly quota: string,
    /** The most one tenant may hold; 0 = no limit. */
    private readonly limit: number,
  ) {}

  /** Counts one more for the tenant, or throws RESOURCE_EXHAUSTED; returns the function that leaves (once). */
  enter(tenant: string): () => void {
    const held = this.held.get(tenant) ?? 0;
    if (this.limit > 0 && held >= this.limit) {
      throw new RpcError(
        status.RESOURCE_EXHAUSTED,
        `you have ${held} ${this.what} open, the most one tenant may (${this.quota} = ${this.limit}); close one first`,
      );
    }
    this.held.set(tenant, held + 1);
    let left = false;
    return () => {
      if (left) return;
      left = true;
      const remaining = (this.held.get(tenant) ?? 0) - 1;
      if (remaining > 0) this.held.set(tenant, remaining);
      else this.held.delete(tenant);
    };
  }
}
