import { CgroupError } from '../errors.js';
import { type CgroupFs, ioError } from '../fs.js';
import type { Resources } from '../manager.js';
import { compileDeviceProgram } from './device-program.js';

export const controller = 'devices';

export function isRequested(resources: Resources): boolean {
  return resources.devices !== undefined;
}

/**
 * cgroup v2 has no devices files: the rules become an eBPF program attached to the cgroup
 * (device-program.ts). Attached once, when the container's cgroup is set up: a second set of
 * rules would be added to the first (both must allow), so changing them later is refused.
 */
export async function apply(dir: string, resources: Resources, fs: CgroupFs): Promise<void> {
  if (!resources.devices) return;
  if (!fs.attachDeviceProgram) {
    throw new CgroupError(
      'ECGROUPUNSUPPORTED',
      'device rules on cgroup v2 need bpf(2), which this file layer lacks',
      {
        path: dir,
        controller,
      },
    );
  }
  const program = compileDeviceProgram(resources.devices);
  try {
    await fs.attachDeviceProgram(dir, program);
  } catch (error) {
    throw ioError('attach the device program to', dir, error, controller);
  }
}
