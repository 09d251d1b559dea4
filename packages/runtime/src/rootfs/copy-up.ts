/**
 * runc's `tmpcopyup` mount option (podman puts it on every tmpfs of `--tmpfs` and `--read-only`):
 * a tmpfs mounted over a directory of the image starts with a copy of that directory.
 *
 * The child mounts the tmpfs with its other mounts and waits before pivot_root (the set-up pause,
 * see process/setup-pause.ts); this process then copies, from the image as it is on the host into
 * the tmpfs as the container's mount namespace has it (/proc/PID/root). The image is hostile: the
 * copy is copy.ts's, which resolves every path inside its root on both sides and never follows a
 * symlink of the copy. As in a copy out of a container, device nodes are left out and set-id bits
 * dropped (runc keeps them; such a tmpfs is usually nodev and nosuid anyway). As runc's, the
 * tmpfs's root gets the mode of the directory it covers.
 */
import { CopyError, copyContentsBetweenRoots } from './copy.js';

export interface CopyUp {
  /** The mount's destination in the container, resolved in the image's files. */
  path: string;
  /** Its mount point as a host path in the container's mount namespace (under the rootfs). */
  target: string;
}

/** Fills each copy-up tmpfs of the child `pid`, waiting before pivot_root, from `rootfs`. */
export function copyUpTmpfs(rootfs: string, pid: number, mounts: readonly CopyUp[]): void {
  for (const { path, target } of mounts) {
    try {
      copyContentsBetweenRoots(rootfs, path, `/proc/${pid}/root${target}`);
    } catch (error) {
      // Nothing in the image there: an empty tmpfs, as without the option.
      if (error instanceof CopyError && error.code === 'ENOSRC') continue;
      throw error;
    }
  }
}
