import { formatDeviceRule } from '../devices.js';
import { type CgroupFs, writeCgroupFile } from '../fs.js';
import type { Resources } from '../manager.js';

export const controller = 'devices';

export function isRequested(resources: Resources): boolean {
  return resources.devices !== undefined;
}

/** Denies everything (`a` to devices.deny), then writes each rule to devices.allow or devices.deny. */
export async function apply(dir: string, resources: Resources, fs: CgroupFs): Promise<void> {
  if (!resources.devices) return;
  await writeCgroupFile(fs, dir, 'devices.deny', 'a');
  for (const rule of resources.devices) {
    await writeCgroupFile(fs, dir, rule.allow ? 'devices.allow' : 'devices.deny', formatDeviceRule(rule));
  }
}
