import { S_IFCHR } from '@box/sys';
import type { LinuxDevice } from '../spec.js';
import type { SafeSteps } from './safe-path.js';

export interface DeviceNode {
  path: string;
  major: number;
  minor: number;
}

/** The devices every container gets in its /dev (as runc and docker). */
export const DEFAULT_DEVICES: readonly DeviceNode[] = [
  { path: 'null', major: 1, minor: 3 },
  { path: 'zero', major: 1, minor: 5 },
  { path: 'full', major: 1, minor: 7 },
  { path: 'random', major: 1, minor: 8 },
  { path: 'urandom', major: 1, minor: 9 },
  { path: 'tty', major: 5, minor: 0 },
];

const LINKS: readonly [target: string, name: string][] = [
  ['/proc/self/fd', 'fd'],
  ['/proc/self/fd/0', 'stdin'],
  ['/proc/self/fd/1', 'stdout'],
  ['/proc/self/fd/2', 'stderr'],
  ['pts/ptmx', 'ptmx'],
];

export function makedev(major: number, minor: number): number {
  return (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12);
}

/**
 * Populates a fresh /dev tmpfs at `dev` (a host path inside the rootfs, where the caller checked
 * that tmpfs is what the container will see). In a user namespace mknod is not allowed, so the
 * host's nodes are bind-mounted onto empty files instead, as runc does. A default device the config
 * lists itself (`listed`, container paths: podman's --privileged lists every host node) is left to
 * that entry, as runc does: made twice, the second mknod would fail (EEXIST). Every step goes
 * through SafeSteps: the path from the rootfs to `dev` is the image's (its /dev may be a symlink
 * to a directory of it), and a symlink swapped in on the way must fail the step, not lead it out.
 */
export function addDeviceSteps(
  safe: SafeSteps,
  dev: string,
  userns: boolean,
  listed: ReadonlySet<string>,
): void {
  for (const device of DEFAULT_DEVICES) {
    if (listed.has(`/dev/${device.path}`)) continue;
    const path = `${dev}/${device.path}`;
    if (userns) {
      safe.createFile(path, 0o666);
      safe.bind(`/dev/${device.path}`, path, false, 0, 0);
    } else {
      safe.mknod(path, S_IFCHR | 0o666, makedev(device.major, device.minor));
    }
  }
  for (const [target, name] of LINKS) safe.symlink(target, `${dev}/${name}`, true);
}

const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;
const TYPE_BITS: Record<LinuxDevice['type'], number> = { c: S_IFCHR, u: S_IFCHR, b: S_IFBLK, p: S_IFIFO };

/**
 * Makes one of the spec's devices (linux.devices) at `target`, a host path inside the rootfs that
 * the caller resolved in the container's files; made without following any symlink (see
 * safe-path.ts). In a user namespace mknod is refused: the host's node of the same path is
 * bind-mounted instead, as runc does. Whether the container may use a node is the devices
 * cgroup's decision, not this.
 */
export function addSpecDeviceStep(
  safe: SafeSteps,
  device: LinuxDevice,
  target: string,
  userns: boolean,
): void {
  if (userns) {
    safe.createFile(target, 0o666);
    safe.bind(device.hostPath ?? device.path, target, false, 0, 0);
    return;
  }
  // mknod applies the umask, which is 0 during the set-up: the mode bits stand as given. Only
  // the permission bits of fileMode: its file type bits (podman sends them) never choose the
  // node's type, `type` does (S_IFBLK bits on a "c" device would otherwise make a block node).
  const mode = TYPE_BITS[device.type] | ((device.fileMode ?? 0o666) & 0o7777);
  safe.mknod(target, mode, device.type === 'p' ? 0 : makedev(device.major!, device.minor!), device);
}
