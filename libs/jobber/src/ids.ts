import type { JobStore } from "./store";

/**
 * Hands out job ids: positive, increasing, unique on this host for the life
 * of the state directory, never reused. Allocation is synchronous, so
 * concurrent starts in this process cannot interleave, and the high-water
 * mark is persisted before the id is returned, so a crash cannot hand an id
 * out twice.
 */
export class IdAllocator {
  private last: number;
  private readonly lastId: ReturnType<JobStore["openLastId"]>;

  constructor(store: JobStore) {
    this.lastId = store.openLastId();
    let highest = this.lastId.read();
    for (const tenant of store.tenants()) {
      for (const id of store.ids(tenant)) highest = Math.max(highest, id);
    }
    this.last = highest;
  }

  next(): number {
    const id = this.last + 1;
    this.lastId.write(id);
    this.last = id;
    return id;
  }

  close(): void {
    this.lastId.close();
  }
}
