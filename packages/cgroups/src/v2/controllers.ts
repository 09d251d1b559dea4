import { type CgroupFs, readCgroupFile, writeCgroupFile } from '../fs.js';

/** The v2 controllers box enables for its cgroups when the host offers them. */
export const V2_BOX_CONTROLLERS = ['cpuset', 'cpu', 'io', 'memory', 'pids'];

/** The controllers a cgroup may use: its `cgroup.controllers`. */
export async function readControllers(fs: CgroupFs, dir: string): Promise<Set<string>> {
  return new Set((await readCgroupFile(fs, dir, 'cgroup.controllers')).split(/\s+/).filter(Boolean));
}

/**
 * Enables controllers for the children of `dir` through its `cgroup.subtree_control`, writing only
 * those that are offered and not yet on (so a parent that is already set up is left untouched).
 */
export async function enableControllers(fs: CgroupFs, dir: string, wanted: readonly string[]): Promise<void> {
  const offered = await readControllers(fs, dir);
  const enabled = new Set(
    (await readCgroupFile(fs, dir, 'cgroup.subtree_control')).split(/\s+/).filter(Boolean),
  );
  const missing = wanted.filter((controller) => offered.has(controller) && !enabled.has(controller));
  if (missing.length === 0) return;
  await writeCgroupFile(
    fs,
    dir,
    'cgroup.subtree_control',
    missing.map((controller) => `+${controller}`).join(' '),
  );
}
