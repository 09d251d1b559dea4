import { sharesToWeight } from '../convert.js';
import { type CgroupFs, readCgroupFile, writeCgroupFile } from '../fs.js';
import type { CgroupStats, Resources } from '../manager.js';
import { parseKeyedCounters } from '../values.js';

export const controller = 'cpu';

export function isRequested(resources: Resources): boolean {
  const cpu = resources.cpu;
  return (
    cpu !== undefined && (cpu.shares !== undefined || cpu.quota !== undefined || cpu.period !== undefined)
  );
}

/** cpu.weight (from shares) and cpu.max (`quota period`, `max` for no quota). */
export async function apply(dir: string, resources: Resources, fs: CgroupFs): Promise<void> {
  const cpu = resources.cpu;
  if (!cpu) return;
  if (cpu.shares !== undefined) await writeCgroupFile(fs, dir, 'cpu.weight', sharesToWeight(cpu.shares));
  if (cpu.quota === undefined && cpu.period === undefined) return;
  // A period alone keeps the quota there is now; a quota alone keeps the period.
  const quota =
    cpu.quota === undefined
      ? ((await readCgroupFile(fs, dir, 'cpu.max')).split(' ')[0] ?? 'max')
      : cpu.quota === -1
        ? 'max'
        : String(cpu.quota);
  await writeCgroupFile(fs, dir, 'cpu.max', cpu.period === undefined ? quota : `${quota} ${cpu.period}`);
}

/** cpu.stat is in every v2 cgroup (no controller needed); usage_usec is in microseconds. */
export async function stats(dir: string, fs: CgroupFs): Promise<NonNullable<CgroupStats['cpu']>> {
  const counters = parseKeyedCounters(await readCgroupFile(fs, dir, 'cpu.stat'));
  return { usageNs: (counters.get('usage_usec') ?? 0) * 1000 };
}
