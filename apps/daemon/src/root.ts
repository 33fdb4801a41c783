/** Why jobberd cannot run as this user, or undefined when it can (root). */
export function rootRefusal(uid: number | undefined): string | undefined {
  if (uid === 0) return undefined;
  return `jobberd must run as root (this is uid ${uid ?? "unknown"}): it creates a cgroup and namespaces for every job. Run it as root (from a checkout: sudo ./scripts/bun run jobberd)`;
}
