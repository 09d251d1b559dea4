import { type CgroupFs, hasCgroupFile, writeCgroupFile } from '../fs.js';

/**
 * SIGKILLs every task of the cgroup and its children at once through `cgroup.kill` (Linux 5.14+).
 * Returns false when the kernel has no cgroup.kill, so the caller falls back to signalling PIDs.
 */
export async function killViaCgroupKill(dir: string, fs: CgroupFs): Promise<boolean> {
  if (!(await hasCgroupFile(fs, dir, 'cgroup.kill'))) return false;
  await writeCgroupFile(fs, dir, 'cgroup.kill', 1);
  return true;
}
