import { join } from 'node:path';
import type { CgroupMount, CgroupMounts } from './detect.js';
import { V1_CONTROLLERS } from './detect.js';
import { CgroupError } from './errors.js';
import { type CgroupFs, hasCgroupFile, listChildCgroups } from './fs.js';

/**
 * Finds the hierarchies under a directory laid out like /sys/fs/cgroup, without mountinfo:
 * the directory itself is a v2 hierarchy if it has `cgroup.controllers`; otherwise each
 * subdirectory named after controllers (`memory`, `cpu,cpuacct`) is a v1 hierarchy, and a
 * subdirectory with `cgroup.controllers` (usually `unified`) is the v2 one, and `systemd` is v1's
 * `name=systemd` hierarchy.
 */
export async function scanCgroupRoot(root: string, fs: CgroupFs): Promise<CgroupMounts> {
  const v1 = new Map<string, CgroupMount>();
  if (await hasCgroupFile(fs, root, 'cgroup.controllers')) {
    return { v1, v2: { mountPoint: root, root: '/', controllers: [] } };
  }
  let v2: CgroupMount | undefined;
  let systemd: CgroupMount | undefined;
  for (const name of (await listChildCgroups(fs, root)).sort()) {
    const mountPoint = join(root, name);
    if (await hasCgroupFile(fs, mountPoint, 'cgroup.controllers')) {
      v2 ??= { mountPoint, root: '/', controllers: [] };
      continue;
    }
    if (name === 'systemd') {
      systemd ??= { mountPoint, root: '/', controllers: [] };
      continue;
    }
    const controllers = name.split(',').filter((part) => V1_CONTROLLERS.includes(part));
    if (controllers.length === 0) continue;
    const mount: CgroupMount = { mountPoint, root: '/', controllers };
    for (const controller of controllers) if (!v1.has(controller)) v1.set(controller, mount);
  }
  if (v1.size === 0 && !v2) {
    throw new CgroupError('ECGROUPMODE', `no cgroup hierarchy found under ${root}`, { path: root });
  }
  return { v1, v2, systemd };
}
