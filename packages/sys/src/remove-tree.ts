/**
 * The removal of a tree that a container or an image made: a container's layer, a volume, an
 * image layer. Their depth is theirs to choose: Node's recursive rmSync walks a tree by recursion
 * and absolute paths, and a 2000-level tree overflows its stack (a path past PATH_MAX would fail
 * it too), which made `box rm`, `volume rm` and `rmi` fail for good on such a tree. rm(1) walks
 * with openat, relative to each directory, at any depth, and takes what rmSync cannot.
 */
import { existsSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { mountInfo } from './mountinfo.js';

export interface RemoveTreeOptions {
  /**
   * Other processes may still change the tree while it goes (a volume that a running container
   * could share). Threat: rmSync lists a directory and then removes its entries by absolute path;
   * a directory swapped for a symlink to a host directory in between leads those removals, as
   * root, onto the host's files. rm(1)'s walk (fts) opens each directory relative to its parent,
   * with O_NOFOLLOW, checks it is the directory it listed, and removes its entries relative to
   * that fd: such a tree goes to rm(1) at once.
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

/** rm -rf --one-file-system, after checking that nothing is mounted at or below `path`. */
function removeWithRm(path: string, before?: Error): void {
  const mounted = mountsAtOrBelow(path);
  if (mounted.length > 0)
    throw new Error(`cannot remove ${path}: ${mounted[0]} is mounted in it`, { cause: before });
  // Loaded only here: child_process costs every program that loads @box/sys several ms.
  const { spawnSync } = createRequire(import.meta.url)(
    'node:child_process',
  ) as typeof import('node:child_process');
  // By its path, never through PATH: the walk's safety is GNU rm's (fts), not a program of the caller's.
  const program = existsSync('/usr/bin/rm') ? '/usr/bin/rm' : '/bin/rm';
  const rm = spawnSync(program, ['-rf', '--one-file-system', '--', path], { encoding: 'utf8' });
  if (rm.status !== 0)
    throw new Error(
      `cannot remove ${path}: ${before ? `${before.message}; ` : ''}rm -rf: ${rm.error?.message ?? rm.stderr.trim()}`,
      { cause: before ?? rm.error },
    );
}

/** The mount points at or below `path` in this mount namespace. */
function mountsAtOrBelow(path: string): string[] {
  const prefix = path.endsWith('/') ? path : `${path}/`;
  return mountInfo()
    .map((mount) => mount.point)
    .filter((point) => point === path || point.startsWith(prefix));
}
