const UNITS = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** A byte count as a person reads it: "512 bytes", "1 MiB", "23.5 GiB" (binary units, at most one decimal). */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const shown = unit === 0 || Number.isInteger(value) ? String(value) : value.toFixed(1).replace(/\.0$/, "");
  return `${shown} ${UNITS[unit]}`;
}
