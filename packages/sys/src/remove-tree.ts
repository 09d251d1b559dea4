/**
 * The removal of a tree that a container or an image made: a container's layer, a volume, an
 * image layer. Their depth is theirs to choose: Node's recursive rmSync walks a tree by recursion
 * and absolute paths, and a 2000-level tree overflows its stack (a path past PATH_MAX would fail
 * it too), which made `box rm`, `volume rm` and `rmi` fail for good on such a tree. rm(1) walks
 * with openat, relative to each directory, at any depth, and takes what rmSync cannot.
 */
import { existsSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { mountInfo } from './mountinfo.js';
import { cloneMount, close } from './syscalls.js';

export interface RemoveTreeOptions {
  /**
   * Other processes may still change the tree while it goes (a volume that a running container
   * could share). Threat: rmSync lists a directory and then removes its entries by absolute path;
   * a directory swapped for a symlink to a host directory in between leads those removals, as
   * root, onto the host's files. So such a tree is removed through a detached nosymfollow clone
   * of its directory (cloneMount), where a path that meets a symlink fails (ELOOP) instead of
   * following it, and, when that cannot be made (no CAP_SYS_ADMIN over this mount namespace) or
   * fails, by rm(1), whose walk (fts) opens each directory relative to its parent with O_NOFOLLOW,
   * checks it is the directory it listed, and removes its entries relative to that fd. rm(1)
   * alone is a process more (about 10 ms for a container's layer).
   */
  changing?: boolean;
}

/**
 * Removes `path` and everything below it, never following a symlink; a missing path is fine.
 * Throws an Error naming the path when something is left, and when a mount is at or below it
 * (its files are not the tree's: rm(1)'s --one-file-system stops only at another device, and a
 * bind of a directory of the same file system is not one).
 */
export function removeTree(path: string, options: RemoveTreeOptions = {}): void {
  if (options.changing) {
    if (removeThroughClone(path)) return;
    // What was added after rm(1) listed a directory leaves that directory behind: once more, and
    // again, before the error is the caller's.
    for (let attempt = 1; ; attempt++) {
      try {
        removeWithRm(path);
        return;
      } catch (error) {
        if (attempt === 3) throw error;
      }
    }
  }
  try {
    rmSync(path, { recursive: true, force: true });
    return;
  } catch (error) {
    // Only what recursion and absolute paths cannot do goes to rm(1): a tree too deep for the
    // stack (RangeError) or for PATH_MAX. Anything else (EBUSY of a mount point, EACCES) is the
    // caller's to see.
    const code = (error as NodeJS.ErrnoException).code;
    if (!(error instanceof RangeError) && code !== 'ENAMETOOLONG') throw error;
    removeWithRm(path, error as Error);
  }
}

/**
 * Removes the tree at `path` through a detached clone of its directory that follows no symlink;
 * false when the clone cannot be made or something is left (rm(1) is the caller's next try). The
 * clone holds only the directory's own file system, not what is mounted in it: a tree with a mount
 * at or below it is left to removeWithRm, which refuses it.
 */
function removeThroughClone(path: string): boolean {
  if (!existsSync(path)) return true;
  if (mountsAtOrBelow(path).length > 0) return false;
  let fd: number;
  try {
    fd = cloneMount(path, { nosymfollow: true, nosuid: true, nodev: true, noexec: true });
  } catch {
    return false;
  }
  try {
    const root = `/proc/self/fd/${fd}`;
    for (const name of readdirSync(root)) rmSync(`${root}/${name}`, { recursive: true, force: true });
  } catch {
    return false;
  } finally {
    close(fd);
  }
  try {
    rmdirSync(path);
    return true;
  } catch {
    return false;
  }
}

/** rm -rf --one-file-system, after checking that nothing is mounted at or below `path`. */
function removeWithRm(path: string, before?: Error): void {
  const mounted = mountsAtOrBelow(path);
  if (mounted.length > 0)
    throw new Error(`cannot remove ${path}: ${mounted[0]} is mounted in it`, { cause: before });
  // Loaded only here: child_process costs every program that loads @box/sys several ms.
  const { spawnSync } = createRequire(import.meta.url)(
    'node:child_process',
  ) as typeof import('node:child_process');
  const rm = spawnSync(gnuRm(spawnSync, path), ['-rf', '--one-file-system', '--', path], {
    encoding: 'utf8',
  });
  if (rm.status !== 0)
    throw new Error(
      `cannot remove ${path}: ${before ? `${before.message}; ` : ''}rm -rf: ${rm.error?.message ?? rm.stderr.trim()}`,
      { cause: before ?? rm.error },
    );
}

let checkedRm: string | undefined;

/**
 * GNU rm, by its path (never through PATH: the walk's safety is its fts, not a program of the
 * caller's), checked once a process. Another rm is refused: busybox's has no --one-file-system,
 * and uutils' has had symlink races.
 */
function gnuRm(spawnSync: typeof import('node:child_process').spawnSync, path: string): string {
  if (checkedRm !== undefined) return checkedRm;
  const program = existsSync('/usr/bin/rm') ? '/usr/bin/rm' : '/bin/rm';
  const version = spawnSync(program, ['--version'], { encoding: 'utf8' });
  if (version.status !== 0 || !version.stdout.includes('(GNU coreutils)'))
    throw new Error(
      `cannot remove ${path}: ${program} is not GNU rm (coreutils), whose walk never follows a symlink`,
    );
  checkedRm = program;
  return program;
}

/** The mount points at or below `path` in this mount namespace. */
function mountsAtOrBelow(path: string): string[] {
  const prefix = path.endsWith('/') ? path : `${path}/`;
  return mountInfo()
    .map((mount) => mount.point)
    .filter((point) => point === path || point.startsWith(prefix));
}
