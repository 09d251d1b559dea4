import { lstatSync, readlinkSync } from 'node:fs';
import { posix } from 'node:path';

const MAX_LINKS = 40;

/**
 * Resolves `path` as the container would see it with `root` as "/": symlinks
 * are followed inside root, and ".." never climbs above it. Missing components
 * are kept as they are. Returns the host path. A symlink in an image can
 * therefore never send a mount or a lookup to the host.
 */
export function resolveInRoot(root: string, path: string): string {
  // Not normalised first: ".." must apply to where a symlink led, as in the kernel.
  const pending = path.split('/').filter(Boolean);
  const resolved: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const host = posix.join(root, ...resolved, part);
    let isLink = false;
    try {
      isLink = lstatSync(host).isSymbolicLink();
    } catch {
      // Missing: keep the rest literally.
    }
    if (!isLink) {
      resolved.push(part);
      continue;
    }
    if (++links > MAX_LINKS)
      throw new Error(`too many levels of symbolic links resolving ${path} in ${root}`);
    const target = readlinkSync(host);
    if (target.startsWith('/')) resolved.length = 0;
    pending.unshift(...target.split('/').filter(Boolean));
  }
  return posix.join(root, ...resolved);
}
