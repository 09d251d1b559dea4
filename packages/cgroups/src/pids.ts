/** The pids controller: the same files on cgroup v1 and v2, so one module serves both managers. */
import { join } from 'node:path';
import { type CgroupFs, readCgroupFile, writeCgroupFile } from './fs.js';
import type { CgroupStats, Resources } from './manager.js';
import { parseCounter, parseLimit } from './values.js';

export const controller = 'pids';

export function isRequested(resources: Resources): boolean {
  return resources.pids !== undefined;
}

/** pids.max: a positive limit, or `max` for 0 and below (docker and runc read those as unlimited). */
export async function apply(dir: string, resources: Resources, fs: CgroupFs): Promise<void> {
  if (!resources.pids) return;
  const { limit } = resources.pids;
  await writeCgroupFile(fs, dir, 'pids.max', limit > 0 ? String(limit) : 'max');
}

export async function stats(dir: string, fs: CgroupFs): Promise<NonNullable<CgroupStats['pids']>> {
  return {
    current: parseCounter(await readCgroupFile(fs, dir, 'pids.current'), join(dir, 'pids.current')),
    limit: parseLimit(await readCgroupFile(fs, dir, 'pids.max'), join(dir, 'pids.max')),
  };
}
