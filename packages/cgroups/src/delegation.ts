/**
 * The cgroup v2 subtree delegated to the calling user, where an ordinary user's (rootless) box may
 * make its containers' cgroups.
 *
 * Delegation is ownership: systemd's `Delegate=yes` (on user@UID.service, or a scope made with
 * `systemd-run --user --scope`) hands the user a cgroup directory with its `cgroup.procs`,
 * `cgroup.subtree_control` and `cgroup.threads`; the kernel then lets that user make child cgroups
 * there, move its own processes between them and write the children's limits. cgroup v1 has no
 * such model (its hierarchies are root's alone), so hybrid and legacy hosts delegate nothing.
 *
 * The subtree is the highest cgroup, from this process's own upwards, that is the user's together
 * with every cgroup in between. Its ancestors are root's: box never writes there. Its caller makes
 * a child cgroup of its own there (box: `<subtree>/box/<id>`), as a cgroupfs manager does; it does
 * not ask systemd for a scope per container over D-Bus, as podman's systemd manager does, so on
 * user@UID.service that child sits beside the units of the user's systemd.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { cgroupModeOf, readCgroupMounts } from './detect.js';
import { type CgroupFs, nodeCgroupFs, readCgroupFile } from './fs.js';

export interface DelegatedCgroup {
  /** The delegated cgroup, below the v2 hierarchy's root (no leading slash). */
  path: string;
  /** The controllers its child cgroups can have. */
  controllers: string[];
}

export interface FindDelegatedCgroupOptions {
  /** Whose delegation (default: this process's uid; inside a user namespace, as mapped there). */
  uid?: number;
  /** /proc/self/cgroup text (default: read it). */
  selfCgroup?: string;
  /** /proc/self/mountinfo text (default: read it). */
  mountinfo?: string;
  fs?: CgroupFs;
}

/** A delegated subtree, or why there is none (one line, for a refusal). */
export type Delegation = { delegated: DelegatedCgroup } | { delegated?: undefined; reason: string };

function ownedBy(path: string, uid: number): boolean {
  try {
    return statSync(path).uid === uid;
  } catch {
    return false;
  }
}

/** A cgroup the user was handed: the directory and the files that delegation chowns. */
function isDelegated(dir: string, uid: number): boolean {
  return ['', 'cgroup.procs', 'cgroup.subtree_control'].every((file) => ownedBy(join(dir, file), uid));
}

export async function findDelegatedCgroup(options: FindDelegatedCgroupOptions = {}): Promise<Delegation> {
  const fs = options.fs ?? nodeCgroupFs;
  const uid = options.uid ?? process.getuid?.() ?? 0;
  const mounts = readCgroupMounts(options.mountinfo ?? readFileSync('/proc/self/mountinfo', 'utf8'));
  if (cgroupModeOf(mounts) !== 'unified' || !mounts.v2)
    return { reason: 'cgroup v1 delegates no cgroup to a user' };
  const line = (options.selfCgroup ?? readFileSync('/proc/self/cgroup', 'utf8'))
    .split('\n')
    .find((l) => l.startsWith('0::'));
  if (!line) return { reason: 'this process is in no cgroup v2 cgroup' };
  const own = line.slice(3);
  // The mount may show a subtree only (a container's /sys/fs/cgroup): paths are below its root.
  const mountRoot = mounts.v2.root === '/' ? '' : mounts.v2.root;
  if (own !== mountRoot && !own.startsWith(`${mountRoot}/`))
    return { reason: `this process's cgroup ${own} is not below the mounted ${mounts.v2.root}` };
  const segments = own.slice(mountRoot.length).split('/').filter(Boolean);
  // Outside its cgroup namespace's root a process sees `/../…`: nothing below the mount.
  if (segments.some((segment) => segment === '.' || segment === '..'))
    return { reason: `this process's cgroup ${own} is outside the mounted hierarchy` };
  let top = -1;
  for (let depth = segments.length; depth > 0; depth--) {
    if (!isDelegated(join(mounts.v2.mountPoint, ...segments.slice(0, depth)), uid)) break;
    top = depth;
  }
  if (top < 0) return { reason: `this process's cgroup ${own || '/'} is not delegated to this user` };
  const path = segments.slice(0, top).join('/');
  const dir = join(mounts.v2.mountPoint, path);
  const words = async (file: string) => (await readCgroupFile(fs, dir, file)).split(/\s+/).filter(Boolean);
  // cgroup v2 has no processes in a cgroup that hands controllers down: one that holds some can
  // give its children only what it already hands down.
  const busy = (await readCgroupFile(fs, dir, 'cgroup.procs')).trim() !== '';
  const controllers = busy ? await words('cgroup.subtree_control') : await words('cgroup.controllers');
  return { delegated: { path, controllers } };
}
