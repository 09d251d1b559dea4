/**
 * Container paths seen from the host, as the container will see them: in the union of an
 * overlay's layers (or in one root directory) with the bind mounts on top.
 *
 * The union follows overlayfs. A name is looked up in the layers of its directory, top
 * first, and the first layer that has it decides: a whiteout (a 0/0 character device) hides
 * it; a non-directory is the entry; a directory is merged with the same name in the layers
 * below, down to the first where it is not a directory (a whiteout or a file ends the
 * merge) or where the directory is opaque (xattr trusted.overlay.opaque=y, or
 * user.overlay.opaque for an overlay mounted with userxattr), which is the last one merged.
 * Layers without the name are passed over. A single root directory has no whiteouts: a 0/0
 * character device there is a device.
 *
 * The files are an image's or a running container's, so hostile, and box reads them as
 * root. No host path through them is ever handed to the kernel. Each layer (and each mount
 * source) is opened once as a directory fd; each name is then opened with
 * openat(dir fd, name, O_PATH|O_NOFOLLOW) in a directory fd got the same way, one
 * component at a time. ".." is applied here to the path resolved so far and never given to
 * the kernel, and a symlink is read through its own fd (readlinkat) and resolved here
 * against the container's root. So an absolute symlink or a ".." chain never leaves the
 * root, a symlink in one layer is followed through the union (an upper /bin/sh -> busybox
 * finds the busybox only a lower layer has), a symlink in a lower layer under a directory
 * of an upper one is never followed (the upper directory hides it), and a directory swapped
 * for a symlink meanwhile cannot redirect a lookup that holds the directory's fd already.
 * openat2 with RESOLVE_IN_ROOT confines a lookup to one directory tree, not to a union of
 * them: it is what reads a single file (read.ts), not what walks the layers.
 */
import { closeSync, fstatSync, type Stats } from 'node:fs';
import { posix } from 'node:path';
import {
  AT_FDCWD,
  fgetxattr,
  O_DIRECTORY,
  O_NOFOLLOW,
  O_PATH,
  O_RDONLY,
  openat,
  readlinkat,
  SyscallError,
} from '@box/sys';
import { RuntimeError } from '../errors.js';

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

/**
 * A new file system mounted at `destination` (a tmpfs, devpts, mqueue…): none of the image's files
 * are below it, so nothing there is a symlink to follow. Its contents are made later, by box.
 */
export interface FreshMountView {
  destination: string;
  fresh: true;
}

export type MountView = BindMountView | FreshMountView;

export interface ResolveOptions {
  /** The overlay is mounted with userxattr: opaque directories carry user.overlay.opaque. */
  userxattr?: boolean;
  /** The top layer was written by fuse-overlayfs: its own opaque mark counts too. */
  fuseOverlay?: boolean;
}

/** A file of the container. */
export interface ContainerFile {
  stats: Stats;
  /** An O_PATH fd of it, owned by the ContainerView that found it (valid until its close()). */
  fd: number;
  /** On a noexec mount. */
  noexec: boolean;
}

/** What a name is: a file in one layer, or a directory with the fds of the layers that make it up. */
interface Node {
  stats: Stats;
  fd: number;
  /** For a directory: its fd in each layer that takes part, top first. */
  dirs?: number[];
}

const MISSING = new Set(['ENOENT', 'ENOTDIR', 'ELOOP']);

/** The mount that shows `path`: the last one mounted on it or on a directory above it covers the others. */
export function mountAt(mounts: readonly MountView[], path: string): MountView | undefined {
  let found: MountView | undefined;
  for (const mount of mounts) {
    const { destination } = mount;
    if (destination === '/' || path === destination || path.startsWith(`${destination}/`)) found = mount;
  }
  return found;
}

/**
 * Looks up container paths in `layers` (top first; one directory for a plain rootfs or a
 * running container's root) and bind mounts. Keeps the fds it opens, so that a lookup of
 * many paths (a PATH search) opens each directory once; close() closes them all.
 */
export class ContainerView {
  private readonly fds: number[] = [];
  private readonly nodes = new Map<string, Node | undefined>();
  private readonly opaqueXattrs: readonly string[];

  constructor(
    private readonly layers: readonly string[],
    options: ResolveOptions = {},
  ) {
    this.opaqueXattrs = [
      options.userxattr ? 'user.overlay.opaque' : 'trusted.overlay.opaque',
      ...(options.fuseOverlay ? ['user.fuseoverlayfs.opaque'] : []),
    ];
  }

  /**
   * Resolves `path` as the container will see it: symlinks are followed inside it and ".."
   * never climbs above its root. Missing components are kept as they are. Returns the
   * resolved container path (absolute, without symlinks), so a symlink in an image or a
   * mounted directory can never send a mount or a lookup outside the container's files.
   */
  resolve(path: string, mounts: readonly MountView[] = []): string {
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
      const found = this.lstat(`/${[...resolved, part].join('/')}`, mounts);
      if (!found?.stats.isSymbolicLink()) {
        resolved.push(part);
        continue;
      }
      if (++links > MAX_LINKS)
        throw new RuntimeError('ELOOP', `too many levels of symbolic links resolving ${path}`);
      const target = readlinkat(found.fd, '').toString('utf8');
      if (target.startsWith('/')) resolved.length = 0;
      pending.unshift(...target.split('/').filter(Boolean));
    }
    return `/${resolved.join('/')}`;
  }

  /** The file at `path` (resolved as resolve() does), or undefined if there is none. */
  find(path: string, mounts: readonly MountView[] = []): ContainerFile | undefined {
    return this.lstat(this.resolve(path, mounts), mounts);
  }

  close(): void {
    for (const fd of this.fds.splice(0)) closeSync(fd);
    this.nodes.clear();
  }

  /**
   * lstat of a container path whose directories are resolved already (no symlinks, no ".."):
   * in the bind mount that covers it, otherwise through the layers. A mount's own root is
   * the source itself (mounting followed the host's symlinks to it); below it, every
   * component is the container's to resolve.
   */
  private lstat(path: string, mounts: readonly MountView[]): ContainerFile | undefined {
    const mount = mountAt(mounts, path);
    // Nothing the image made is on a new file system: every name there is taken as it is.
    if (mount && 'fresh' in mount) return undefined;
    const scope = mount ? `mount ${mount.source}` : 'layers';
    const below = mount ? path.slice(mount.destination === '/' ? 0 : mount.destination.length) : path;
    const parts = below.split('/').filter(Boolean);
    let node = this.root(scope, mount);
    for (let i = 0; node && i < parts.length; i++) {
      // A directory above that is not one now (or a symlink swapped in meanwhile) has nothing below.
      if (!node.dirs) return undefined;
      const key = `${scope}:/${parts.slice(0, i + 1).join('/')}`;
      if (!this.nodes.has(key)) this.nodes.set(key, this.child(node, parts[i]!, mount === undefined));
      node = this.nodes.get(key);
    }
    return node && { stats: node.stats, fd: node.fd, noexec: mount?.noexec ?? false };
  }

  private root(scope: string, mount: BindMountView | undefined): Node | undefined {
    const key = `${scope}:/`;
    if (this.nodes.has(key)) return this.nodes.get(key);
    let node: Node | undefined;
    if (mount) {
      // Following the host's symlinks, as mount(2) did.
      const fd = this.open(AT_FDCWD, mount.source, O_PATH);
      if (fd !== undefined) {
        const stats = fstatSync(fd);
        node = { stats, fd, dirs: stats.isDirectory() ? [fd] : undefined };
      }
    } else {
      const dirs: number[] = [];
      for (const layer of this.layers) {
        const fd = this.open(AT_FDCWD, layer, O_PATH | O_DIRECTORY);
        if (fd !== undefined) dirs.push(fd);
      }
      if (dirs.length > 0) node = { stats: fstatSync(dirs[0]!), fd: dirs[0]!, dirs };
    }
    this.nodes.set(key, node);
    return node;
  }

  /** `name` in directory `dir`: through its layers, top first, as overlayfs merges them. */
  private child(dir: Node, name: string, inLayers: boolean): Node | undefined {
    const union = inLayers && this.layers.length > 1;
    let found: Node | undefined;
    const dirs: number[] = [];
    for (const parent of dir.dirs!) {
      const fd = this.open(parent, name, O_PATH | O_NOFOLLOW);
      if (fd === undefined) continue;
      const stats = fstatSync(fd);
      if (union && stats.isCharacterDevice() && Number(stats.rdev) === 0) break; // a whiteout
      if (!stats.isDirectory()) {
        if (dirs.length === 0) found = { stats, fd };
        break;
      }
      dirs.push(fd);
      found ??= { stats, fd, dirs };
      if (union && this.isOpaque(fd)) break;
    }
    return found;
  }

  private isOpaque(dirFd: number): boolean {
    // xattrs cannot be read through an O_PATH fd: reopen the directory itself, never a path.
    const fd = openat(dirFd, '.', O_RDONLY | O_DIRECTORY);
    try {
      // With fuseOverlay, fuse-overlayfs's own mark counts too (see @box/unionfs whiteout.ts).
      return this.opaqueXattrs.some((name) => {
        const value = fgetxattr(fd, name);
        return value !== null && value.length === 1 && value[0] === 0x79;
      });
    } catch (error) {
      // A file system without xattrs (of that namespace) has no opaque directories.
      if (error instanceof SyscallError && (error.code === 'ENOTSUP' || error.code === 'EOPNOTSUPP'))
        return false;
      throw error;
    } finally {
      closeSync(fd);
    }
  }

  /** openat, keeping the fd; undefined when there is nothing there. */
  private open(dirFd: number, name: string, flags: number): number | undefined {
    let fd: number;
    try {
      fd = openat(dirFd, name, flags);
    } catch (error) {
      if (error instanceof SyscallError && MISSING.has(error.code)) return undefined;
      throw error;
    }
    this.fds.push(fd);
    return fd;
  }
}

/**
 * Resolves `path` as the container will see it, in the union of `layers` (top first; one
 * directory for a plain rootfs) with `mounts` on top (see ContainerView.resolve).
 */
export function resolveContainerPath(
  layers: readonly string[],
  path: string,
  mounts: readonly BindMountView[] = [],
  options: ResolveOptions = {},
): string {
  const view = new ContainerView(layers, options);
  try {
    return view.resolve(path, mounts);
  } finally {
    view.close();
  }
}

/** resolveContainerPath for one root directory; returns the host path. */
export function resolveInRoot(root: string, path: string): string {
  const resolved = resolveContainerPath([root], path);
  return resolved === '/' ? root : posix.join(root, resolved);
}
