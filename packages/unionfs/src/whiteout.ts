/**
 * OCI whiteouts ↔ overlayfs. An OCI layer deletes a lower file with an empty `.wh.<name>` entry and
 * hides a whole lower directory with `<dir>/.wh..wh..opq`; overlayfs wants a 0/0 character device
 * named `<name>` and the xattr `trusted.overlay.opaque=y` (`user.overlay.opaque` with userxattr).
 */
import { lstatSync, rmSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { errnoOf, UnionfsError } from './errors.js';
import { xattrBackend } from './xattr.js';

/** The OCI whiteout prefix. */
export const WHITEOUT_PREFIX = '.wh.';
/** The OCI opaque-directory marker file. */
export const OPAQUE_WHITEOUT = '.wh..wh..opq';

export interface XattrModeOptions {
  /** Use `user.overlay.*` instead of `trusted.overlay.*` (overlays mounted with userxattr). */
  userxattr?: boolean;
  /** The upper dir was written by fuse-overlayfs: its own marks count (see FUSE_OPAQUE_XATTR). */
  fuseOverlay?: boolean;
}

/** The xattr that marks an opaque directory. */
export function opaqueXattr(options: XattrModeOptions = {}): string {
  return options.userxattr ? 'user.overlay.opaque' : 'trusted.overlay.opaque';
}

/**
 * fuse-overlayfs's own marks in an upper directory, where it cannot set overlayfs's xattrs (box
 * uses it for a rootless container where the kernel refuses overlay in a user namespace): the
 * xattr `user.fuseoverlayfs.opaque=y` on an opaque directory, which also holds a `.wh..wh..opq`
 * file and a `.wh..opq` whiteout. The xattr counts as opaque (with userxattr); the two entries are
 * marks, not files of the container. Only for an upper that fuse-overlayfs wrote (`fuseOverlay`):
 * on the kernel's overlay a container may make the same names and xattr, which mean nothing there.
 */
export const FUSE_OPAQUE_XATTR = 'user.fuseoverlayfs.opaque';
/** fuse-overlayfs's own xattrs (opaque, origin…): never copied into a layer. */
export const FUSE_XATTR_PREFIX = 'user.fuseoverlayfs.';

/** True for one of fuse-overlayfs's two opaque-directory entries (see FUSE_OPAQUE_XATTR). */
export function isFuseOpaqueMark(name: string, stats: Stats): boolean {
  if (name === OPAQUE_WHITEOUT) return stats.isFile() && stats.size === 0;
  return name === '.wh..opq' && isOverlayWhiteout(stats);
}

/** The overlay's own xattr namespace, never copied into a layer. */
export function overlayXattrPrefix(options: XattrModeOptions = {}): string {
  return options.userxattr ? 'user.overlay.' : 'trusted.overlay.';
}

function checkDir(dir: string): void {
  let stats: Stats;
  try {
    stats = lstatSync(dir);
  } catch (error) {
    throw new UnionfsError('EUNIONFSIO', `whiteout directory ${dir}: ${errnoOf(error) ?? String(error)}`, {
      path: dir,
      cause: error,
    });
  }
  if (!stats.isDirectory()) {
    // Also refuses a symlink: a whiteout must never land outside the layer through one.
    throw new UnionfsError('EUNIONFSPATH', `whiteout directory ${dir} is not a directory`, { path: dir });
  }
}

/**
 * Turns the OCI whiteout `<dir>/.wh.<name>` into overlayfs's: a 0/0 character device `<dir>/<name>`,
 * replacing whatever this layer already had there. `name` is the name without the `.wh.` prefix.
 */
export function toOverlayWhiteout(dir: string, name: string): void {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new UnionfsError('EUNIONFSPATH', `bad whiteout name ${JSON.stringify(name)} in ${dir}`, {
      path: dir,
    });
  }
  if (name.startsWith(WHITEOUT_PREFIX)) {
    throw new UnionfsError(
      'EUNIONFSUNSUPPORTED',
      `whiteout of a whiteout (${WHITEOUT_PREFIX}${name}) in ${dir}`,
      {
        path: dir,
      },
    );
  }
  checkDir(dir);
  const path = join(dir, name);
  try {
    rmSync(path, { recursive: true, force: true });
  } catch (error) {
    throw new UnionfsError('EUNIONFSIO', `cannot replace ${path} with a whiteout`, { path, cause: error });
  }
  try {
    xattrBackend().mknodWhiteout(path);
  } catch (error) {
    if (error instanceof UnionfsError) throw error;
    throw new UnionfsError('EUNIONFSIO', `cannot make whiteout ${path}: ${errnoOf(error) ?? String(error)}`, {
      path,
      cause: error,
    });
  }
}

/** Marks dir opaque: overlayfs then hides everything the lower layers have below it. */
export function markOpaque(dir: string, options: XattrModeOptions = {}): void {
  checkDir(dir);
  try {
    xattrBackend().set(dir, opaqueXattr(options), 'y');
  } catch (error) {
    if (error instanceof UnionfsError) throw error;
    throw new UnionfsError('EUNIONFSIO', `cannot mark ${dir} opaque: ${errnoOf(error) ?? String(error)}`, {
      path: dir,
      cause: error,
    });
  }
}

/** True for overlayfs's whiteout: a character device with device number 0/0. */
export function isOverlayWhiteout(stats: Pick<Stats, 'isCharacterDevice' | 'rdev'>): boolean {
  return stats.isCharacterDevice() && Number(stats.rdev) === 0;
}

/** True when dir carries the opaque xattr (or fuse-overlayfs's, with fuseOverlay) with value `y`. */
export function isOpaque(dir: string, options: XattrModeOptions = {}): boolean {
  const names = options.fuseOverlay ? [opaqueXattr(options), FUSE_OPAQUE_XATTR] : [opaqueXattr(options)];
  return names.some((name) => {
    const value = xattrBackend().get(dir, name);
    return value !== null && value.length === 1 && value[0] === 0x79;
  });
}

/**
 * The hooks for the image unpacker (`unpackLayer(stream, dir, { onWhiteout, onOpaque })`): OCI
 * whiteouts become overlayfs whiteouts as the layer is unpacked.
 */
export function overlayWhiteoutHooks(options: XattrModeOptions = {}): {
  onWhiteout(dir: string, name: string): void;
  onOpaque(dir: string): void;
} {
  return {
    onWhiteout: (dir, name) => toOverlayWhiteout(dir, name),
    onOpaque: (dir) => markOpaque(dir, options),
  };
}
