import { dirname } from 'node:path';
import { type CgroupFs, readCgroupFile, writeCgroupFile } from '../fs.js';
import type { Resources } from '../manager.js';
import { parseCpuset } from '../size.js';

export const controller = 'cpuset';

const FILES = ['cpuset.cpus', 'cpuset.mems'] as const;

export function isRequested(resources: Resources): boolean {
  return resources.cpu?.cpus !== undefined || resources.cpu?.mems !== undefined;
}

/**
 * A new v1 cpuset starts with empty `cpuset.cpus`/`cpuset.mems`, and adding a task to it fails with
 * ENOSPC. So every new level gets its parent's values before anything else is written.
 */
export async function initFromParent(dir: string, fs: CgroupFs): Promise<void> {
  for (const file of FILES) {
    if ((await readCgroupFile(fs, dir, file)).trim() !== '') continue;
    await writeCgroupFile(fs, dir, file, await readCgroupFile(fs, dirname(dir), file));
  }
}

/** cpuset.cpus and cpuset.mems, checked against the parent's (a child may only narrow them). */
export async function apply(dir: string, resources: Resources, fs: CgroupFs): Promise<void> {
  const cpu = resources.cpu;
  if (!cpu) return;
  const parent = dirname(dir);
  if (cpu.cpus !== undefined) {
    const cpus = parseCpuset(cpu.cpus, await readCgroupFile(fs, parent, 'cpuset.cpus'));
    await writeCgroupFile(fs, dir, 'cpuset.cpus', cpus);
  }
  if (cpu.mems !== undefined) {
    const mems = parseCpuset(cpu.mems, await readCgroupFile(fs, parent, 'cpuset.mems'));
    await writeCgroupFile(fs, dir, 'cpuset.mems', mems);
  }
}
