import { existsSync, readFileSync, realpathSync, statSync } from "node:fs";
import { join } from "node:path";
import type { DeviceNumber } from "./files";

function deviceNumber(dev: number): DeviceNumber {
  // Linux's new_encode_dev layout, as returned by stat(2).
  const major = (dev >> 8) & 0xfff;
  const minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
  return `${major}:${minor}`;
}

/** IO throttling applies to whole disks: map a partition to the disk it is on. */
function wholeDisk(device: DeviceNumber): DeviceNumber | undefined {
  const sysPath = `/sys/dev/block/${device}`;
  if (!existsSync(sysPath)) return undefined; // tmpfs, overlay: no block device
  if (!existsSync(join(sysPath, "partition"))) return device;
  const parent = join(realpathSync(sysPath), "..", "dev");
  return readFileSync(parent, "utf8").trim() as DeviceNumber;
}

/** The disks that back the given paths, for io limits. */
export function blockDevicesOf(paths: string[]): DeviceNumber[] {
  const devices = new Set<DeviceNumber>();
  for (const path of paths) {
    const disk = wholeDisk(deviceNumber(statSync(path).dev));
    if (disk) devices.add(disk);
  }
  return [...devices];
}
