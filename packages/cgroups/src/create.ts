import { readFileSync } from 'node:fs';
import { type CgroupMode, type CgroupMounts, cgroupModeOf, readCgroupMounts } from './detect.js';
import { CgroupError } from './errors.js';
import { type CgroupFs, nodeCgroupFs } from './fs.js';
import { scanCgroupRoot } from './layout.js';
import type { CgroupManager } from './manager.js';
import { splitCgroupPath } from './paths.js';
import { V1CgroupManager } from './v1/manager.js';
import { V2CgroupManager } from './v2/manager.js';

export interface CreateCgroupManagerOptions {
  /** The cgroup below each hierarchy root, e.g. `box/<container id>`. */
  path: string;
  /**
   * A directory laid out like /sys/fs/cgroup (a v2 hierarchy, or one directory per v1 hierarchy
   * plus an optional v2 one). When given, the hierarchies are found there instead of in mountinfo.
   */
  root?: string;
  /** /proc/self/mountinfo text to find the hierarchies in (default: read it). Not with `root`. */
  mountinfo?: string;
  /** Overrides the detected mode: `unified` uses v2, `hybrid`/`legacy` use the v1 hierarchies. */
  mode?: CgroupMode;
  /** File operations; the default is the real filesystem. Tests pass a fake from `./testing`. */
  fs?: CgroupFs;
  /**
   * destroy() removes only the cgroup and its children, never its parents, as runc. Without it,
   * destroy() also removes the parents left empty (box's own `box` parent goes with the last
   * container): right for a parent only box uses, wrong for one its caller made and manages
   * (kubelet's `kubepods/<qos class>`, whose limits it keeps writing).
   */
  keepParents?: boolean;
}

async function findMounts(options: CreateCgroupManagerOptions, fs: CgroupFs): Promise<CgroupMounts> {
  if (options.root !== undefined && options.mountinfo !== undefined) {
    throw new CgroupError('ECGROUPVALUE', 'pass either root or mountinfo to createCgroupManager, not both');
  }
  if (options.root !== undefined) return scanCgroupRoot(options.root, fs);
  const mountinfo = options.mountinfo ?? readFileSync('/proc/self/mountinfo', 'utf8');
  return readCgroupMounts(mountinfo);
}

/**
 * A manager for one cgroup: the v2 backend when the host is `unified`, the v1 backend for
 * `hybrid` and `legacy` hosts. Nothing is created until `create()`.
 */
export async function createCgroupManager(options: CreateCgroupManagerOptions): Promise<CgroupManager> {
  const segments = splitCgroupPath(options.path);
  const fs = options.fs ?? nodeCgroupFs;
  const mounts = await findMounts(options, fs);
  const mode = options.mode ?? cgroupModeOf(mounts);
  const path = segments.join('/');
  if (mode === 'unified') {
    if (!mounts.v2)
      throw new CgroupError(
        'ECGROUPMODE',
        'cgroup mode "unified" was asked for, but no cgroup2 hierarchy is mounted',
      );
    return new V2CgroupManager({
      mode,
      path,
      segments,
      root: mounts.v2.mountPoint,
      keepParents: options.keepParents,
      fs,
    });
  }
  if (mounts.v1.size === 0) {
    throw new CgroupError(
      'ECGROUPMODE',
      `cgroup mode "${mode}" was asked for, but no cgroup v1 hierarchy is mounted`,
    );
  }
  // The container joins systemd's hierarchy and a hybrid host's cgroup2 tree as well (see
  // V1CgroupManager): they hold no controllers, only which unit a process belongs to. Only where
  // the mount shows the whole hierarchy: below a mount of a subtree (a cgroup namespace's, or
  // a unit's), the container's path would land inside that subtree.
  const trackers = [mounts.systemd, mounts.v2]
    .filter((mount) => mount?.root === '/')
    .map((mount) => mount!.mountPoint);
  return new V1CgroupManager({
    mode,
    path,
    segments,
    mounts: mounts.v1,
    trackers,
    keepParents: options.keepParents,
    fs,
  });
}
