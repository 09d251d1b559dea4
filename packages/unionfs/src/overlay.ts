/**
 * Host-side overlay mounts, for tools that need a merged view outside any container (export or
 * commit of a stopped container). Containers themselves mount their overlay inside their own mount
 * namespace (see @box/runtime); use {@link overlayMountData} for that.
 */
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { MNT_DETACH, type MountInfo, MS, mount, mountInfo, umount2 } from '@box/sys';
import { errnoOf, UnionfsError } from './errors.js';
import { checkOverlayPath, type OverlayMountDataOptions, overlayMountData } from './options.js';

export interface MountOverlayOptions extends OverlayMountDataOptions {
  /** The directory the merged view is mounted on; it must exist. */
  target: string;
  /**
   * Follow no symlink on the view (nosymfollow, Linux 5.10): for walking a tree whose owner may
   * change it meanwhile (a running container's upper dir as a layer), where a directory swapped
   * for a link would lead the walk into the host's files. Links are still read as links.
   */
  noSymlinks?: boolean;
}

function mountError(target: string, cause: unknown): UnionfsError {
  const errno = errnoOf(cause);
  const hint =
    errno === 'EINVAL'
      ? ' (a bad option, lowerdirs that do not exist, or an upperdir on a filesystem overlayfs cannot use; the kernel log says which)'
      : errno === 'EPERM'
        ? ' (needs root or CAP_SYS_ADMIN; in a user namespace, Linux ≥ 5.11 and userxattr)'
        : errno === 'ENODEV'
          ? ' (this kernel has no overlayfs)'
          : '';
  return new UnionfsError(
    'EUNIONFSMOUNT',
    `cannot mount overlay on ${target}: ${errno ?? String(cause)}${hint}`,
    {
      path: target,
      errno,
      cause,
    },
  );
}

/**
 * The flags of every host-side overlay: nosuid and nodev. The merged view is the container's
 * files, which its root wrote (a setuid-root binary, a device node of the disk) or a hostile image
 * brought; on the host they are data to read or copy, never programs to run with their owner's
 * rights or devices to open.
 */
const HOST_VIEW_FLAGS = MS.NOSUID | MS.NODEV;

/** Mounts data with relative lowerdirs from `cwd`: chdir, mount, chdir back, with no await between. */
function mountFrom(cwd: string, target: string, data: string, flags: number): void {
  if (!isMainThread) {
    // process.chdir is not allowed in a worker thread: let mount(8) do it in a child process.
    const options = `nosuid,nodev,${flags & MS.NOSYMFOLLOW ? 'nosymfollow,' : ''}${data}`;
    const r = spawnSync('mount', ['-t', 'overlay', '-o', options, 'overlay', target], {
      cwd,
      encoding: 'utf8',
    });
    if (r.status !== 0) {
      const error = Object.assign(new Error(r.error?.message ?? r.stderr.trim()), {
        code: r.error ? errnoOf(r.error) : 'EINVAL',
      });
      throw error;
    }
    return;
  }
  const previous = process.cwd();
  process.chdir(cwd);
  try {
    mount('overlay', target, 'overlay', flags, data);
  } finally {
    process.chdir(previous);
  }
}

/**
 * Mounts an overlay on `options.target`, nosuid and nodev. Throws `EUNIONFSMOUNT` (with the
 * kernel's errno) on failure.
 */
export function mountOverlay(options: MountOverlayOptions): void {
  const target = checkOverlayPath(options.target, 'target');
  let isDir = false;
  try {
    isDir = statSync(target).isDirectory();
  } catch (error) {
    throw new UnionfsError('EUNIONFSPATH', `mount target ${target} does not exist`, {
      path: target,
      cause: error,
    });
  }
  if (!isDir)
    throw new UnionfsError('EUNIONFSPATH', `mount target ${target} is not a directory`, { path: target });
  const { data, cwd } = overlayMountData(options);
  const flags = HOST_VIEW_FLAGS | (options.noSymlinks ? MS.NOSYMFOLLOW : 0);
  try {
    if (cwd === undefined) mount('overlay', target, 'overlay', flags, data);
    else mountFrom(cwd, target, data, flags);
  } catch (error) {
    throw mountError(target, error);
  }
}

/**
 * Unmounts the overlay on target; when it is busy (an open file, a process's cwd), detaches it
 * (MNT_DETACH) so that it goes away once no longer used. Returns how: `unmounted` or `detached`.
 */
export function unmountOverlay(target: string): 'unmounted' | 'detached' {
  try {
    umount2(target, 0);
    return 'unmounted';
  } catch (error) {
    if (errnoOf(error) !== 'EBUSY') {
      throw new UnionfsError(
        'EUNIONFSUNMOUNT',
        `cannot unmount ${target}: ${errnoOf(error) ?? String(error)}`,
        {
          path: target,
          cause: error,
        },
      );
    }
  }
  try {
    umount2(target, MNT_DETACH);
    return 'detached';
  } catch (error) {
    throw new UnionfsError('EUNIONFSUNMOUNT', `cannot detach ${target}: ${errnoOf(error) ?? String(error)}`, {
      path: target,
      cause: error,
    });
  }
}

export interface WithOverlayOptions extends Omit<MountOverlayOptions, 'target'> {
  /**
   * Where to mount; by default `merged` in a new private directory (0700) under the OS temp dir,
   * both removed afterwards.
   */
  target?: string;
}

/**
 * A mount point only this user can reach: `merged` in a new 0700 directory under the OS temp dir,
 * named `PREFIX-PID-XXXXXX` after this process. Why not the temp directory itself: once mounted, a
 * mount point has the mode of the mounted root (a container's `/` is 0755), and the temp dir can
 * be listed, so every local user could walk into the container's files while box reads or writes
 * them. Views that a killed process left mounted are removed first (removeAbandonedViews).
 * Returns the directory to remove and the mount point.
 */
export function privateMountPoint(prefix: string): { dir: string; target: string } {
  removeAbandonedViews();
  const dir = mkdtempSync(join(tmpdir(), `${prefix}${process.pid}-`));
  const target = join(dir, 'merged');
  try {
    mkdirSync(target, { mode: 0o700 });
  } catch (error) {
    rmdirSync(dir);
    throw error;
  }
  return { dir, target };
}

/** privateMountPoint's names: box-overlay-PID-XXXXXX/merged, box-fuse-overlay-PID-XXXXXX/merged. */
const VIEW = /^box-(?:overlay|fuse-overlay)-(\d+)-[\w]{6}$/;

/**
 * Unmounts and removes the views of privateMountPoint whose process is gone (a box killed while it
 * copied or exported), as seen in this mount namespace. A pid in use again keeps its view until
 * that process ends too: never one still in use. Best effort: what cannot be removed stays.
 */
export function removeAbandonedViews(): void {
  let mounts: MountInfo[];
  try {
    mounts = mountInfo();
  } catch {
    return;
  }
  const base = tmpdir();
  for (const { point } of mounts) {
    if (basename(point) !== 'merged') continue;
    const dir = dirname(point);
    const match = VIEW.exec(basename(dir));
    if (!match || dirname(dir) !== base || existsSync(`/proc/${match[1]}`)) continue;
    // Only a directory of this user's own, closed to others, as privateMountPoint makes them. Any
    // user can make a directory of that name in the temp dir and mount (FUSE) below it, then swap
    // it for a symlink between the read of mountinfo and the unmount: root would unmount and
    // remove where the link leads. A directory of this user's in a sticky temp dir cannot be
    // renamed or replaced by another user, so the check holds for the steps after it.
    try {
      const st = lstatSync(dir);
      if (!st.isDirectory() || st.uid !== process.geteuid?.() || (st.mode & 0o077) !== 0) continue;
    } catch {
      continue;
    }
    try {
      umount2(point, MNT_DETACH);
      rmdirSync(point);
      rmdirSync(dir);
    } catch {
      // another user's view, or a namespace where it is locked: not ours to remove
    }
  }
}

function removeMountPoint(made: { dir: string; target: string }): void {
  rmdirSync(made.target);
  rmdirSync(made.dir);
}

/**
 * Mounts the overlay, runs `fn(mergedDir)` and always unmounts afterwards (also when fn throws),
 * removing the mount point if it made it. Never leaves a mount behind: a busy mount is detached.
 */
export async function withOverlay<T>(
  options: WithOverlayOptions,
  fn: (merged: string) => T | Promise<T>,
): Promise<T> {
  const made = options.target === undefined ? privateMountPoint('box-overlay-') : undefined;
  const target = options.target ?? made!.target;
  try {
    mountOverlay({ ...options, target });
  } catch (error) {
    if (made) removeMountPoint(made);
    throw error;
  }
  const cleanUp = () => {
    unmountOverlay(target);
    if (made) removeMountPoint(made);
  };
  let result: T;
  try {
    result = await fn(target);
  } catch (error) {
    try {
      cleanUp();
    } catch {
      // fn's own error matters more than a failed clean-up (a busy mount is detached anyway).
    }
    throw error;
  }
  cleanUp();
  return result;
}

export interface OverlaySupport {
  supported: boolean;
  /** Why not, for a message to the user. */
  reason?: string;
}

const probes = new Map<string, Promise<OverlaySupport>>();

/**
 * Whether overlayfs can be used here: listed in /proc/filesystems (or loadable), and a real
 * test mount with an upper dir in a temp dir works (writing a file, then deleting a lower one so a
 * whiteout is made). With `userxattr`, the mount uses user.* xattrs as in a user namespace.
 * The answer is cached for the process.
 */
export function probeOverlay(
  options: { userxattr?: boolean; tmpdir?: string } = {},
): Promise<OverlaySupport> {
  const key = `${options.userxattr ? 'u' : ''}:${options.tmpdir ?? ''}`;
  let probe = probes.get(key);
  if (!probe) {
    probe = Promise.resolve().then(() => runProbe(options));
    probes.set(key, probe);
  }
  return probe;
}

/** True when overlayfs works here (see {@link probeOverlay}); false means: use the copy driver. */
export async function overlaySupported(
  options: { userxattr?: boolean; tmpdir?: string } = {},
): Promise<boolean> {
  return (await probeOverlay(options)).supported;
}

function runProbe(options: { userxattr?: boolean; tmpdir?: string }): OverlaySupport {
  let listed = false;
  try {
    listed = /\toverlay$/m.test(readFileSync('/proc/filesystems', 'utf8'));
  } catch {
    // No /proc: the test mount decides.
  }
  const dir = mkdtempSync(join(options.tmpdir ?? tmpdir(), 'box-overlay-probe-'));
  const [lower, upper, work, merged] = ['lower', 'upper', 'work', 'merged'].map((d) => join(dir, d)) as [
    string,
    string,
    string,
    string,
  ];
  for (const d of [lower, upper, work, merged]) mkdirSync(d);
  writeFileSync(join(lower, 'old'), 'old');
  let mounted = false;
  try {
    mount(
      'overlay',
      merged,
      'overlay',
      0,
      overlayMountData({
        lowerdirs: [lower],
        upperdir: upper,
        workdir: work,
        userxattr: options.userxattr,
        diffable: false,
      }).data,
    );
    mounted = true;
    writeFileSync(join(merged, 'new'), 'new');
    rmSync(join(merged, 'old'));
    const whiteout = statSync(join(upper, 'old'));
    if (!whiteout.isCharacterDevice())
      return { supported: false, reason: 'overlayfs made no whiteout in the upper dir' };
    return { supported: true };
  } catch (error) {
    const errno = errnoOf(error);
    const why = listed
      ? `a test overlay mount failed (${errno ?? String(error)})`
      : 'overlayfs is not in /proc/filesystems and a test mount failed';
    return {
      supported: false,
      reason: `${why}${options.userxattr ? ' with userxattr (needs Linux ≥ 5.11)' : ''}`,
    };
  } finally {
    if (mounted) unmountOverlay(merged);
    rmSync(dir, { recursive: true, force: true });
  }
}
