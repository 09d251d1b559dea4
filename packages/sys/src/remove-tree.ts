/**
 * The removal of a tree that a container or an image made: a container's layer, a volume, an
 * image layer. Their depth is theirs to choose: Node's recursive rmSync walks a tree by recursion
 * and absolute paths, and a 2000-level tree overflows its stack (a path past PATH_MAX would fail
 * it too), which made `box rm`, `volume rm` and `rmi` fail for good on such a tree. rm(1) walks
 * with openat, relative to each directory, at any depth, and takes what rmSync cannot.
 */
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { mountInfo } from './mountinfo.js';

/**
 * Removes `path` and everything below it, never following a symlink; a missing path is fine.
 * Throws an Error naming the path when something is left, and when a mount is at or below it
 * (its files are not the tree's: rm(1)'s --one-file-system stops only at another device, and a
 * bind of a directory of the same file system is not one).
 */
export function removeTree(path: string): void {
  try {
    rmSync(path, { recursive: true, force: true });
    return;
  } catch (error) {
    // Only what recursion and absolute paths cannot do goes to rm(1): a tree too deep for the
    // stack (RangeError) or for PATH_MAX. Anything else (EBUSY of a mount point, EACCES) is the
    // caller's to see.
    const code = (error as NodeJS.ErrnoException).code;
    if (!(error instanceof RangeError) && code !== 'ENAMETOOLONG') throw error;
    const mounted = mountsAtOrBelow(path);
    if (mounted.length > 0)
      throw new Error(`cannot remove ${path}: ${mounted[0]} is mounted in it`, { cause: error });
    // Loaded only here: child_process costs every program that loads @box/sys several ms.
    const { spawnSync } = createRequire(import.meta.url)(
      'node:child_process',
    ) as typeof import('node:child_process');
    const rm = spawnSync('rm', ['-rf', '--one-file-system', '--', path], { encoding: 'utf8' });
    if (rm.status !== 0)
      throw new Error(
        `cannot remove ${path}: ${(error as Error).message}; rm -rf: ${rm.error?.message ?? rm.stderr.trim()}`,
        { cause: error },
      );
  }
}

/** The mount points at or below `path` in this mount namespace. */
function mountsAtOrBelow(path: string): string[] {
  const prefix = path.endsWith('/') ? path : `${path}/`;
  return mountInfo()
    .map((mount) => mount.point)
    .filter((point) => point === path || point.startsWith(prefix));
}
