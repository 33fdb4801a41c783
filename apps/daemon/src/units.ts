// Values of jobberd's settings as people write them: sizes (256M, 4G),
// durations (5s, 168h), core counts, counts and shares (5%). One parser per
// kind, each naming the setting in its error, for flags and config files alike.

const SIZE_UNITS: Record<string, number> = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };
const SIZE = /^(\d+(?:\.\d+)?)\s*(?:([KMGT])(?:i?B)?|B)?$/i;

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/;

/** A setting's value that does not parse: the message names the setting and shows the expected form. */
export class SettingError extends Error {
  override readonly name = "SettingError";
}

/** `256M`, `1G`, `1.5G`, `512KiB` or plain bytes; binary units (1K = 1024). 0 is allowed (unlimited). */
export function parseSize(setting: string, text: string): number {
  const match = SIZE.exec(text.trim());
  const bytes = match ? Math.floor(Number(match[1]) * (SIZE_UNITS[(match[2] ?? "").toUpperCase()] ?? 0)) : -1;
  if (!match || !Number.isSafeInteger(bytes)) {
    throw new SettingError(`${setting}: ${JSON.stringify(text)} is not a size like 256M, 4G or 1048576`);
  }
  return bytes;
}

/** `5s`, `500ms`, `2m`, `168h`, `7d`, or plain seconds; in milliseconds. */
export function parseDuration(setting: string, text: string): number {
  const match = DURATION.exec(text.trim());
  if (!match) {
    throw new SettingError(
      `${setting}: ${JSON.stringify(text)} is not a duration like 500ms, 5s, 2m or 168h`,
    );
  }
  return Number(match[1]) * (DURATION_UNITS[match[2] ?? "s"] as number);
}

/** CPU cores, e.g. 0.5 or 4; 0 is allowed (unlimited). */
export function parseCpus(setting: string, text: string): number {
  const cores = /^\d+(\.\d+)?$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!Number.isFinite(cores)) {
    throw new SettingError(`${setting}: ${JSON.stringify(text)} is not a number of cores like 0.5 or 4`);
  }
  return cores;
}

/** A whole number ≥ 0. */
export function parseCount(setting: string, text: string): number {
  const count = /^\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(count)) {
    throw new SettingError(`${setting}: ${JSON.stringify(text)} is not a whole number like 100`);
  }
  return count;
}

/** A share of something (`5%`) or a size (`2G`). */
export function parseShareOrSize(setting: string, text: string): { fraction: number } | { bytes: number } {
  const percent = /^(\d+(?:\.\d+)?)\s*%$/.exec(text.trim());
  if (percent) {
    const fraction = Number(percent[1]) / 100;
    if (fraction > 1) throw new SettingError(`${setting}: ${JSON.stringify(text)} is more than 100%`);
    return { fraction };
  }
  try {
    return { bytes: parseSize(setting, text) };
  } catch {
    throw new SettingError(
      `${setting}: ${JSON.stringify(text)} is neither a share like 5% nor a size like 2G`,
    );
  }
}
