/**
 * The container's /sys/fs/cgroup: a `cgroup` mount (what podman and containerd ask for there,
 * and box run's default) shows the container its own cgroup and nothing of the host's tree.
 *
 * - cgroup v1 (and hybrid) hosts, as runc: a tmpfs holding, for each hierarchy of the host, a
 *   bind mount of the container's own cgroup there. A hierarchy without the container's cgroup
 *   is left out rather than shown from its root (the host's); a hybrid host's cgroup2 tree
 *   (`unified`) is not shown, as runc does not: systemd in a container would take the host for
 *   hybrid and try to manage a tree it cannot write. The host's links to co-mounted hierarchies
 *   (`cpu -> cpu,cpuacct`) are links there too, not the same cgroup bound again.
 * - cgroup v2 hosts, as runc without a cgroup namespace: the container's own cgroup directory,
 *   bound at /sys/fs/cgroup itself. Without a cgroup of its own (a rootless container with no
 *   delegated subtree), an empty tmpfs.
 */
import { existsSync, lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { splitCgroupPath } from '@box/cgroups';
import { MS } from '@box/sys';
import type { SafeSteps } from './safe-path.js';

/** The host directories the container's /sys/fs/cgroup shows. */
export type CgroupMountPlan =
  /** A v2 host: the container's own cgroup, or none. */
  | { kind: 'v2'; own: string | undefined }
  /**
   * A v1 or hybrid host: the container's cgroup in each hierarchy (`name` under the tmpfs), and
   * the host's links from one name to another of those (`cpu` -> `cpu,cpuacct`).
   */
  | {
      kind: 'v1';
      hierarchies: { name: string; own: string }[];
      links: { name: string; target: string }[];
    };

/** Where `cgroupsPath` is under `root` (the host's /sys/fs/cgroup, or a stand-in in tests). */
export function planCgroupMount(root: string, cgroupsPath: string | undefined): CgroupMountPlan {
  // Checked here too (the container's cgroup was made from it, which refuses the same): a path
  // that is empty, "/", or has "." or ".." parts would name the host's tree or leave it.
  const relative = validPath(cgroupsPath);
  if (existsSync(`${root}/cgroup.controllers`)) {
    const own = relative ? `${root}/${relative}` : undefined;
    return { kind: 'v2', own: own && existsSync(own) ? own : undefined };
  }
  let names: string[] = [];
  try {
    names = readdirSync(root);
  } catch {
    // no cgroups here
  }
  const hierarchies: { name: string; own: string }[] = [];
  const maybeLinks: { name: string; target: string }[] = [];
  for (const name of names) {
    if (isLink(`${root}/${name}`)) {
      const target = readLink(`${root}/${name}`);
      if (target !== undefined) maybeLinks.push({ name, target });
      continue;
    }
    const own = relative ? `${root}/${name}/${relative}` : undefined;
    if (!own || !existsSync(own) || existsSync(`${own}/cgroup.controllers`)) continue;
    hierarchies.push({ name, own });
  }
  // Only a link to a name beside it that is shown: never one that leads out of the tmpfs.
  const shown = new Set(hierarchies.map((h) => h.name));
  const links = maybeLinks.filter((link) => shown.has(link.target));
  return { kind: 'v1', hierarchies, links };
}

function validPath(cgroupsPath: string | undefined): string | undefined {
  if (cgroupsPath === undefined) return undefined;
  try {
    return splitCgroupPath(cgroupsPath).join('/');
  } catch {
    return undefined;
  }
}

/** A link's target; undefined when it went meanwhile. */
function readLink(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

/** The child's steps for a `cgroup` mount at `target` (flags: the mount's own, `ro` among them). */
export function addCgroupMount(
  safe: SafeSteps,
  target: string,
  flags: number,
  cgroupsPath: string | undefined,
): void {
  const plan = planCgroupMount('/sys/fs/cgroup', cgroupsPath);
  const readonly = flags & MS.RDONLY;
  const bindFlags = MS.NOSUID | MS.NODEV | MS.NOEXEC | readonly;
  safe.mkdirAll(target);
  if (plan.kind === 'v2' && plan.own) {
    safe.bind(plan.own, target, false, bindFlags, 0);
    return;
  }
  safe.mountOnDir('tmpfs', target, 'tmpfs', MS.NOSUID | MS.NODEV | MS.NOEXEC, 'mode=755');
  if (plan.kind === 'v1') {
    for (const { name, own } of plan.hierarchies) {
      safe.mkdirAll(`${target}/${name}`);
      safe.bind(own, `${target}/${name}`, false, bindFlags, 0);
    }
    for (const link of plan.links) safe.symlink(link.target, `${target}/${link.name}`);
  }
  if (readonly)
    safe.mountOnDir(null, target, null, MS.REMOUNT | MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC);
}
