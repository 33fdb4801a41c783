import { type FSWatcher, watch } from "node:fs";

let open = 0;

/** How many file watchers the library holds right now (for leak checks). */
export function openWatcherCount(): number {
  return open;
}

export interface FileWatch {
  close(): void;
}

/** fs.watch of one file, counted, with a close that is safe to call twice. */
export function watchFile(path: string, onChange: () => void): FileWatch {
  const watcher: FSWatcher = watch(path, onChange);
  open++;
  let closed = false;
  watcher.on("error", () => {
    // The file went away (a removed cgroup): nothing more will change.
  });
  return {
    close() {
      if (closed) return;
      closed = true;
      open--;
      watcher.close();
    },
  };
}
