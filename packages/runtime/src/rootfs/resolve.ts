import { lstatSync, readlinkSync, type Stats } from 'node:fs';
import { posix } from 'node:path';

const MAX_LINKS = 40;

/** lstat of a container path through layers, top first: the first layer that has it wins; a whiteout hides it. */
function lstatInLayers(layers: readonly string[], path: string): { stats: Stats; host: string } | undefined {
  for (const layer of layers) {
    const host = posix.join(layer, path);
    let stats: Stats;
    try {
      stats = lstatSync(host);
    } catch {
      continue;
    }
    // An overlayfs whiteout (0/0 character device) hides the path in the layers below.
    if (stats.isCharacterDevice() && stats.rdev === 0 && layers.length > 1) return undefined;
    return { stats, host };
  }
  return undefined;
}

/**
 * Resolves `path` as the container will see it, in the union of `layers` (top
 * first; one directory for a plain rootfs): symlinks are followed inside it and
 * ".." never climbs above its root. Missing components are kept as they are.
 * Returns the resolved container path (absolute, without symlinks), so a
 * symlink in an image can never send a mount or a lookup outside the rootfs.
 */
export function resolveContainerPath(layers: readonly string[], path: string): string {
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
    const found = lstatInLayers(layers, `/${[...resolved, part].join('/')}`);
    if (!found?.stats.isSymbolicLink()) {
      resolved.push(part);
      continue;
    }
    if (++links > MAX_LINKS) throw new Error(`too many levels of symbolic links resolving ${path}`);
    const target = readlinkSync(found.host);
    if (target.startsWith('/')) resolved.length = 0;
    pending.unshift(...target.split('/').filter(Boolean));
  }
  return `/${resolved.join('/')}`;
}

/** resolveContainerPath for one root directory; returns the host path. */
export function resolveInRoot(root: string, path: string): string {
  const resolved = resolveContainerPath([root], path);
  return resolved === '/' ? root : posix.join(root, resolved);
}
