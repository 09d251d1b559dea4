import { dirname } from 'node:path';
import { type CgroupFs, readCgroupFile, writeCgroupFile } from '../fs.js';
import type { Resources } from '../manager.js';
import { parseCpuset } from '../size.js';

export const controller = 'cpuset';

export function isRequested(resources: Resources): boolean {
  return resources.cpu?.cpus !== undefined || resources.cpu?.mems !== undefined;
}

/**
 * cpuset.cpus and cpuset.mems, checked against what the parent really has (`*.effective`). An empty
 * v2 cpuset inherits its parent's, so unlike v1 nothing needs copying at creation.
 */
export async function apply(dir: string, resources: Resources, fs: CgroupFs): Promise<void> {
  const cpu = resources.cpu;
  if (!cpu) return;
  const parent = dirname(dir);
  if (cpu.cpus !== undefined) {
    const cpus = parseCpuset(cpu.cpus, await readCgroupFile(fs, parent, 'cpuset.cpus.effective'));
    await writeCgroupFile(fs, dir, 'cpuset.cpus', cpus);
  }
  if (cpu.mems !== undefined) {
    const mems = parseCpuset(cpu.mems, await readCgroupFile(fs, parent, 'cpuset.mems.effective'));
    await writeCgroupFile(fs, dir, 'cpuset.mems', mems);
  }
}
