import { dirname, join } from 'node:path';
import { errnoOf } from './errors.js';
import { type CgroupFs, ioError } from './fs.js';

/**
 * Makes root/segments... one level at a time and returns the directories it made.
 * `onLevel` runs for every level (e.g. to fill cpuset values from the parent). A
 * parent removed meanwhile by another container's clean-up (ENOENT) is made again.
 */
export async function makeCgroupDirs(
  fs: CgroupFs,
  root: string,
  segments: readonly string[],
  created: string[],
  onLevel?: (dir: string) => Promise<void>,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    let dir = root;
    try {
      for (const segment of segments) {
        dir = join(dir, segment);
        try {
          await fs.mkdir(dir);
          created.push(dir);
        } catch (error) {
          if (errnoOf(error) !== 'EEXIST') throw ioError('mkdir', dir, error);
        }
        await onLevel?.(dir);
      }
      return;
    } catch (error) {
      if (errnoOf(error) === 'ENOENT' && attempt < 5) continue;
      throw error;
    }
  }
}

/**
 * Removes the now-empty parents of `dir` up to (not including) `root`, so the
 * shared `box` parent disappears with the last container. Stops quietly at the
 * first parent that is still in use.
 */
export async function removeEmptyParents(fs: CgroupFs, dir: string, root: string): Promise<void> {
  for (let parent = dirname(dir); parent.startsWith(`${root}/`); parent = dirname(parent)) {
    try {
      await fs.rmdir(parent);
    } catch {
      return;
    }
  }
}
