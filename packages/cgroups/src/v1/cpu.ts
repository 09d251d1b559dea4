import { errnoOf } from '../errors.js';
import { type CgroupFs, writeCgroupFile } from '../fs.js';
import type { Resources } from '../manager.js';

export const controller = 'cpu';

export function isRequested(resources: Resources): boolean {
  const cpu = resources.cpu;
  return (
    cpu !== undefined && (cpu.shares !== undefined || cpu.quota !== undefined || cpu.period !== undefined)
  );
}

/** cpu.shares, cpu.cfs_period_us and cpu.cfs_quota_us. */
export async function apply(dir: string, resources: Resources, fs: CgroupFs): Promise<void> {
  const cpu = resources.cpu;
  if (!cpu) return;
  if (cpu.shares !== undefined) await writeCgroupFile(fs, dir, 'cpu.shares', cpu.shares);
  let periodPending = false;
  if (cpu.period !== undefined) {
    try {
      await writeCgroupFile(fs, dir, 'cpu.cfs_period_us', cpu.period);
    } catch (error) {
      // A shorter period can be refused (EINVAL) while the old quota/new period exceeds the parent's
      // share; when a quota comes too, runc retries the period after writing it.
      if (errnoOf(error) !== 'EINVAL' || cpu.quota === undefined) throw error;
      periodPending = true;
    }
  }
  if (cpu.quota !== undefined) {
    await writeCgroupFile(fs, dir, 'cpu.cfs_quota_us', cpu.quota);
    if (periodPending) await writeCgroupFile(fs, dir, 'cpu.cfs_period_us', cpu.period!);
  }
}
