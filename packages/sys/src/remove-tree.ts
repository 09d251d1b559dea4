/**
 * The removal of a tree that a container or an image made: a container's layer, a volume, an
 * image layer. Their depth is theirs to choose: Node's recursive rmSync walks a tree by recursion
 * and absolute paths, and a 2000-level tree overflows its stack (a path past PATH_MAX would fail
 * it too), which made `box rm`, `volume rm` and `rmi` fail for good on such a tree. rm(1) walks
 * with openat, relative to each directory, at any depth.
 */
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';

/**
 * Removes `path` and everything below it, never following a symlink and never leaving its file
 * system (a mount below it stays); a missing path is fine. Throws an Error naming the path when
 * something is left.
 */
export function removeTree(path: string): void {
  try {
    rmSync(path, { recursive: true, force: true });
    return;
  } catch (error) {
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
