import { CgroupError } from '../errors.js';
import type { Resources } from '../manager.js';

export const controller = 'devices';

export function isRequested(resources: Resources): boolean {
  return resources.devices !== undefined;
}

/**
 * cgroup v2 has no devices files: rules are an eBPF program attached to the cgroup, which box does
 * not build yet. Asking for device rules on v2 is therefore an error rather than a silent no-op.
 */
export async function apply(dir: string, resources: Resources): Promise<void> {
  if (!resources.devices) return;
  throw new CgroupError(
    'ECGROUPUNSUPPORTED',
    'device rules are not implemented on cgroup v2 yet (they need an eBPF device program)',
    { path: dir, controller },
  );
}
