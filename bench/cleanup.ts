// Everything a benchmark starts (daemons, servers, jobs, temporary
// directories) registers how to undo it here; run.ts undoes all of it, last
// first, whether the run succeeded, failed or was interrupted.

type Undo = () => Promise<void> | void;

const undos: { name: string; undo: Undo }[] = [];

/** Registers `undo`; the returned function runs it now (once) and unregisters it. */
export function onCleanup(name: string, undo: Undo): () => Promise<void> {
  const entry = { name, undo };
  undos.push(entry);
  return async () => {
    const index = undos.indexOf(entry);
    if (index < 0) return;
    undos.splice(index, 1);
    await entry.undo();
  };
}

/** Runs every registered undo, last registered first; failures are reported, not thrown. */
export async function cleanupAll(report: (message: string) => void): Promise<void> {
  while (undos.length > 0) {
    const entry = undos.pop() as { name: string; undo: Undo };
    try {
      await entry.undo();
    } catch (error) {
      report(`cleanup of ${entry.name} failed: ${error instanceof Error ? error.message : error}`);
    }
  }
}
