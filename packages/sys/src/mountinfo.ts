/**
 * This mount namespace's mounts as /proc/self/mountinfo lists them: the one reader of it for
 * box's packages (a mount point's path with the kernel's octal escapes undone).
 */
import { readFileSync } from 'node:fs';

export interface MountInfo {
  /** Where it is mounted (field 5). */
  point: string;
  /** Its per-mount options (field 6): rw or ro, nosuid, nodev, noexec, relatime, ... */
  options: string[];
}

/** Space, tab, newline and backslash in a path are written as \040, \011, \012 and \134. */
function unescapePath(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

/** The mounts, in mountinfo's order (a later one on the same point is on top). */
export function mountInfo(): MountInfo[] {
  const mounts: MountInfo[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const fields = line.split(' ');
    if (fields.length < 6) continue;
    mounts.push({ point: unescapePath(fields[4]!), options: fields[5]!.split(',') });
  }
  return mounts;
}
