import { join } from 'node:path';
import { type CgroupFs, readCgroupFile } from '../fs.js';
import type { CgroupStats } from '../manager.js';
import { parseCounter } from '../values.js';

export const controller = 'cpuacct';

/** CPU time used by all tasks, in nanoseconds. */
export async function stats(dir: string, fs: CgroupFs): Promise<NonNullable<CgroupStats['cpu']>> {
  return {
    usageNs: parseCounter(await readCgroupFile(fs, dir, 'cpuacct.usage'), join(dir, 'cpuacct.usage')),
  };
}
