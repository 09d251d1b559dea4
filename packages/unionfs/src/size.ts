/**
 * The bytes a directory tree holds, as docker counts a container's writable layer (SizeRw) and a
 * volume: the sizes of everything but directories, a hard-linked file once. On the same walk as
 * a layer's diff (diff.ts).
 */
import { lstatSync } from 'node:fs';
import { walk } from './diff.js';
import { errnoOf, UnionfsError } from './errors.js';

export function treeSize(dir: string): number {
  let stats = lstatSync(dir, { throwIfNoEntry: false });
  if (!stats?.isDirectory()) return 0;
  const seen = new Set<string>();
  let size = 0;
  for (const rel of walk(dir)) {
    try {
      stats = lstatSync(`${dir}/${rel}`);
    } catch (error) {
      if (errnoOf(error) === 'ENOENT') continue; // removed meanwhile (a running container)
      throw new UnionfsError('EUNIONFSIO', `cannot stat ${dir}/${rel}: ${errnoOf(error) ?? String(error)}`, {
        path: `${dir}/${rel}`,
        cause: error,
      });
    }
    if (stats.isDirectory() || stats.size === 0) continue;
    if (stats.nlink > 1) {
      const key = `${stats.dev}:${stats.ino}`;
      if (seen.has(key)) continue;
      seen.add(key);
    }
    size += stats.size;
  }
  return size;
}
