import { lstatSync, readlinkSync, type Stats, statSync } from 'node:fs';
import { posix } from 'node:path';

const MAX_LINKS = 40;

/**
 * A host file or directory bind-mounted into the container (a `-v` directory, a volume),
 * as the container will see it once mounted.
 */
export interface BindMountView {
  /** The container path it is mounted on, resolved in the image as the set-up does. */
  destination: string;
  /** The host file or directory it shows. */
  source: string;
  /** Mounted noexec: nothing under it can be executed. */
  noexec?: boolean;
}

/** Where a container path lives: a host path, and whether it is on a noexec mount. */
export interface ContainerFile {
  stats: Stats;
  host: string;
  noexec: boolean;
}

/** The mount that shows `path`: the last one mounted on it or on a directory above it covers the others. */
function mountAt(mounts: readonly BindMountView[], path: string): BindMountView | undefined {
  let found: BindMountView | undefined;
  for (const mount of mounts) {
    const { destination } = mount;
    if (destination === '/' || path === destination || path.startsWith(`${destination}/`)) found = mount;
  }
  return found;
}

/**
 * lstat of a container path: in the bind mount that covers it, otherwise through the layers.
 * A mount's own root is the source itself (mounting followed the host's symlinks to it);
 * below it, every component is the container's to resolve.
 */
function lstatInView(
  layers: readonly string[],
  mounts: readonly BindMountView[],
  path: string,
): ContainerFile | undefined {
  const mount = mountAt(mounts, path);
  if (!mount) {
    const found = lstatInLayers(layers, path);
    return found && { ...found, noexec: false };
  }
  const atRoot = path === mount.destination;
  const host = atRoot ? mount.source : posix.join(mount.source, path.slice(mount.destination.length));
  try {
    return { stats: atRoot ? statSync(host) : lstatSync(host), host, noexec: mount.noexec ?? false };
  } catch {
    return undefined;
  }
}

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
 * first; one directory for a plain rootfs) with `mounts` on top: symlinks are
 * followed inside it and ".." never climbs above its root. Missing components
 * are kept as they are. Returns the resolved container path (absolute, without
 * symlinks), so a symlink in an image or a mounted directory can never send a
 * mount or a lookup outside the container's files.
 */
export function resolveContainerPath(
  layers: readonly string[],
  path: string,
  mounts: readonly BindMountView[] = [],
): string {
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
    const found = lstatInView(layers, mounts, `/${[...resolved, part].join('/')}`);
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

/** The file at `path` in the container (resolved as resolveContainerPath does), or undefined if there is none. */
export function findContainerFile(
  layers: readonly string[],
  path: string,
  mounts: readonly BindMountView[] = [],
): ContainerFile | undefined {
  return lstatInView(layers, mounts, resolveContainerPath(layers, path, mounts));
}

/** resolveContainerPath for one root directory; returns the host path. */
export function resolveInRoot(root: string, path: string): string {
  const resolved = resolveContainerPath([root], path);
  return resolved === '/' ? root : posix.join(root, resolved);
}
