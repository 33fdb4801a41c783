import { existsSync } from "node:fs";
import { join } from "node:path";
import { JobberError } from "../errors";
import type { CgroupDriver, TenantLimits } from "./cgroup";
import type { DeviceNumber } from "./files";
import { V1HybridDriver } from "./v1";
import { V2Driver } from "./v2";

export { blockDevicesOf } from "./block-devices";
export { type CgroupDriver, type JobCgroup, type TenantLimits, TenantPidsFullError } from "./cgroup";

/**
 * Picks the driver for this host by looking, never by configuration: a
 * unified host has cgroup.controllers at the root; a hybrid host has v1
 * controllers and a controller-less cgroup2 at <root>/unified.
 */
export function detectCgroups(
  root: string,
  parent: string,
  ioDevices: DeviceNumber[],
  tenantLimits: TenantLimits,
  warn: (message: string) => void,
): CgroupDriver {
  if (existsSync(join(root, "cgroup.controllers"))) {
    return new V2Driver(root, parent, ioDevices, tenantLimits, warn);
  }
  if (existsSync(join(root, "unified", "cgroup.controllers"))) {
    return new V1HybridDriver(root, parent, ioDevices, tenantLimits, warn);
  }
  throw new JobberError(
    "INTERNAL",
    `no cgroup v2 tree at ${root} or ${join(root, "unified")}: jobber needs cgroup2 (kernel ≥ 5.14) for job lifecycle`,
  );
}
