/**
 * The fallback driver: where overlayfs cannot be mounted (some user namespaces, kernels without
 * it), the image's layers are copied into one plain directory, applying whiteouts and opaque dirs
 * as overlayfs would. It is slow (every file of every layer is copied, and a container pays it at
 * each start) and the container's changes land in that directory, so use it only when
 * {@link overlaySupported} says no.
 */
import {
  chmodSync,
  constants,
  copyFileSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  rmSync,
  type Stats,
  symlinkSync,
} from 'node:fs';
import { join } from 'node:path';
import { errnoOf, UnionfsError } from './errors.js';
import { checkOverlayPath } from './options.js';
import { probeOverlay } from './overlay.js';
import { isOverlayWhiteout, opaqueXattr, overlayXattrPrefix, type XattrModeOptions } from './whiteout.js';
import { xattrBackend } from './xattr.js';

/** What to tell the user when box falls back to copying. */
export const COPY_FALLBACK_MESSAGE =
  'overlayfs is not available here: falling back to copying the image layers into the container root (slow, and uses the disk space of a full copy per container)';

export interface PrepareCopyOptions extends XattrModeOptions {
  /** Called with the fallback message, for the caller's log. */
  onWarning?: (message: string) => void;
}

export interface CopyStats {
  files: number;
  bytes: number;
  whiteouts: number;
}

function fail(what: string, path: string, cause: unknown): UnionfsError {
  if (cause instanceof UnionfsError) return cause;
  return new UnionfsError('EUNIONFSIO', `${what} ${path}: ${errnoOf(cause) ?? String(cause)}`, {
    path,
    cause,
  });
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return undefined;
    throw fail('cannot stat', path, error);
  }
}

function remove(path: string): void {
  try {
    rmSync(path, { recursive: true, force: true });
  } catch (error) {
    throw fail('cannot remove', path, error);
  }
}

/**
 * Materialises `lowerdirs` (top first, as for overlayfs) into `target`, which must be missing or an
 * empty directory: each layer from the bottom up is copied over the ones below it, whiteouts
 * delete, opaque dirs replace. Owners, modes, mtimes, xattrs (not overlayfs's own), hard links
 * within a layer, symlinks, devices and fifos are kept.
 */
export function prepareCopyRootfs(
  lowerdirs: readonly string[],
  target: string,
  options: PrepareCopyOptions = {},
): CopyStats {
  if (lowerdirs.length === 0) throw new UnionfsError('EUNIONFSOPTIONS', 'no layers to copy');
  const layers = lowerdirs.map((d, i) => checkOverlayPath(d, `lowerdir ${i}`));
  const root = checkOverlayPath(target, 'target');
  const existing = lstatOrUndefined(root);
  if (existing && (!existing.isDirectory() || readdirSync(root).length > 0)) {
    throw new UnionfsError('EUNIONFSPATH', `copy target ${root} must be an empty directory`, { path: root });
  }
  options.onWarning?.(COPY_FALLBACK_MESSAGE);
  mkdirSync(root, { recursive: true, mode: 0o755 });
  const stats: CopyStats = { files: 0, bytes: 0, whiteouts: 0 };
  const copier = new LayerCopier(options, stats);
  for (let i = layers.length - 1; i >= 0; i--) copier.layer(layers[i]!, root);
  return stats;
}

/**
 * Chooses the root filesystem driver: `overlay` when overlayfs works here, otherwise `copy` with
 * the reason and the message to show.
 */
export async function selectDriver(
  options: XattrModeOptions = {},
): Promise<{ driver: 'overlay' } | { driver: 'copy'; reason: string; message: string }> {
  const probe = await probeOverlay(options);
  if (probe.supported) return { driver: 'overlay' };
  return {
    driver: 'copy',
    reason: probe.reason ?? 'unknown',
    message: `${COPY_FALLBACK_MESSAGE}: ${probe.reason}`,
  };
}

class LayerCopier {
  private readonly backend = xattrBackend();
  private readonly overlayPrefix: string;
  private readonly opaqueName: string;
  private links = new Map<string, string>();

  constructor(
    options: XattrModeOptions,
    private readonly stats: CopyStats,
  ) {
    this.overlayPrefix = overlayXattrPrefix(options);
    this.opaqueName = opaqueXattr(options);
  }

  layer(layer: string, root: string): void {
    this.links = new Map();
    const top = lstatOrUndefined(layer);
    if (!top?.isDirectory())
      throw new UnionfsError('EUNIONFSPATH', `layer ${layer} is not a directory`, { path: layer });
    this.dir(layer, root);
  }

  /** Copies the contents of layer dir `src` into the existing real directory `dst`. */
  private dir(src: string, dst: string): void {
    let names: string[];
    try {
      names = readdirSync(src).sort();
    } catch (error) {
      throw fail('cannot list', src, error);
    }
    for (const name of names) {
      const from = join(src, name);
      const to = join(dst, name);
      const st = lstatOrUndefined(from);
      if (!st) continue;
      if (isOverlayWhiteout(st)) {
        remove(to);
        this.stats.whiteouts++;
        continue;
      }
      const xattrs = this.backend.list(from);
      const opaque = xattrs.some(([k, v]) => k === this.opaqueName && v.length === 1 && v[0] === 0x79);
      const current = lstatOrUndefined(to);
      if (st.isDirectory()) {
        if (current && (!current.isDirectory() || opaque)) remove(to);
        if (!current?.isDirectory() || opaque) {
          try {
            mkdirSync(to, { mode: 0o700 });
          } catch (error) {
            throw fail('cannot create', to, error);
          }
        }
        this.dir(from, to);
      } else {
        if (current) remove(to);
        if (!this.entry(from, to, st)) continue;
      }
      this.attributes(to, st, xattrs);
    }
  }

  /** Creates a non-directory; returns false when it was a hard link (attributes are shared). */
  private entry(from: string, to: string, st: Stats): boolean {
    try {
      if (st.isFile()) {
        const key = st.nlink > 1 ? `${st.dev}:${st.ino}` : undefined;
        const first = key && this.links.get(key);
        if (first) {
          linkSync(first, to);
          return false;
        }
        copyFileSync(from, to, constants.COPYFILE_FICLONE);
        if (key) this.links.set(key, to);
        this.stats.files++;
        this.stats.bytes += st.size;
      } else if (st.isSymbolicLink()) {
        symlinkSync(readlinkSync(from), to);
      } else if (st.isCharacterDevice() || st.isBlockDevice() || st.isFIFO()) {
        this.node(to, st);
      } else {
        return false; // sockets are not copied
      }
    } catch (error) {
      throw fail('cannot copy', from, error);
    }
    return true;
  }

  private node(to: string, st: Stats): void {
    const rdev = BigInt(st.rdev);
    const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
    const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
    this.backend.mknod(to, st.mode, major, minor);
  }

  private attributes(to: string, st: Stats, xattrs: Array<[string, Buffer]>): void {
    try {
      lchownSync(to, st.uid, st.gid);
      if (!st.isSymbolicLink()) chmodSync(to, st.mode & 0o7777);
      for (const [key, value] of xattrs) {
        if (!key.startsWith(this.overlayPrefix)) this.backend.set(to, key, value);
      }
      lutimesSync(to, st.atime, st.mtime);
    } catch (error) {
      throw fail('cannot set attributes of', to, error);
    }
  }
}
