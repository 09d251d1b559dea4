/**
 * One entry of a layer diff: stat, xattrs, header and (small) data, written through `reserve`.
 * Shared by the main thread and the diff workers.
 */
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  openSync,
  readlinkSync,
  readSync,
  type Stats,
} from 'node:fs';
import { errnoOf, UnionfsError } from './errors.js';
import { BLOCK, encodeHeader, type Reserve, type TarHeader } from './tar.js';
import {
  FUSE_OPAQUE_XATTR,
  FUSE_XATTR_PREFIX,
  isFuseOpaqueMark,
  OPAQUE_WHITEOUT,
  WHITEOUT_PREFIX,
} from './whiteout.js';
import type { Xattr } from './xattr.js';

/**
 * How a regular file of the walk is opened. A running container can put something else in its
 * place between the lstat and the open: O_NOFOLLOW refuses a symlink, O_NONBLOCK keeps a FIFO
 * from blocking the open (and box) for ever, and sameFile then refuses anything that is not the
 * file the lstat saw.
 */
export const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** Whether the file open is the regular file `seen` (its lstat). */
export function sameFile(opened: Stats, seen: Stats): boolean {
  return opened.isFile() && opened.dev === seen.dev && opened.ino === seen.ino;
}
/** xattrs that never go into a layer: the host's SELinux labels (docker leaves them out as well). */
const HOST_XATTRS = new Set(['security.selinux']);

export interface EntryContext {
  root: string;
  overlayPrefix: string;
  opaqueName: string;
  /** The upper dir is fuse-overlayfs's: its marks count (see whiteout.ts FUSE_OPAQUE_XATTR). */
  fuseMarks: boolean;
  skipXattrs: boolean;
  xattrsOf(path: string): Xattr[];
  /** Files larger than this are not read here: `large` (main thread) or `defer` (worker). */
  smallMax: number;
  /** The main thread's record of hard links, inode → first name; a worker has none and defers them. */
  links?: Map<string, string>;
}

/** Nothing more to do; a large file whose data the caller streams (then pads); or leave it to the main thread. */
export type EntryResult = undefined | { large: string; size: number; seen: Stats } | 'defer';

export function fail(what: string, path: string, cause: unknown): UnionfsError {
  if (cause instanceof UnionfsError) return cause;
  return new UnionfsError('EUNIONFSIO', `${what} ${path}: ${errnoOf(cause) ?? String(cause)}`, {
    path,
    cause,
  });
}

function typeOf(stats: Stats): TarHeader['type'] | undefined {
  if (stats.isFile()) return 'file';
  if (stats.isDirectory()) return 'directory';
  if (stats.isSymbolicLink()) return 'symlink';
  if (stats.isCharacterDevice()) return 'character-device';
  if (stats.isBlockDevice()) return 'block-device';
  if (stats.isFIFO()) return 'fifo';
  return undefined; // a socket: nothing a layer can hold
}

function splitDev(rdev: number): [major: number, minor: number] {
  const dev = BigInt(rdev);
  return [
    Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn)),
    Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn)),
  ];
}

/** Encodes the entry at `rel` (relative to ctx.root, no leading slash). */
export function encodeEntry(ctx: EntryContext, rel: string, reserve: Reserve): EntryResult {
  const path = `${ctx.root}/${rel}`;
  const slash = rel.lastIndexOf('/');
  const name = rel.slice(slash + 1);
  let stats: Stats;
  try {
    stats = lstatSync(path);
  } catch (error) {
    throw fail('cannot stat', path, error);
  }
  const type = typeOf(stats);
  if (type === undefined) return undefined;
  // fuse-overlayfs's opaque-directory entries: its directory's xattr says it (below).
  if (ctx.fuseMarks && isFuseOpaqueMark(name, stats)) return undefined;
  const mtime = Math.floor(stats.mtimeMs / 1000);

  if (type === 'character-device' && stats.rdev === 0) {
    const wh = `${rel.slice(0, slash + 1)}${WHITEOUT_PREFIX}${name}`;
    encodeHeader(
      { name: wh, type: 'file', mode: stats.mode & 0o7777, uid: stats.uid, gid: stats.gid, size: 0, mtime },
      reserve,
    );
    return undefined;
  }
  if (name.startsWith(WHITEOUT_PREFIX)) {
    throw new UnionfsError(
      'EUNIONFSUNSUPPORTED',
      `${path}: a file whose name starts with ${WHITEOUT_PREFIX} cannot be stored in an OCI layer`,
      { path },
    );
  }
  if (type === 'file' && ctx.links === undefined && (stats.nlink > 1 || stats.size > ctx.smallMax))
    return 'defer';

  let xattrs: Xattr[] | undefined;
  let opaque = false;
  let all: Xattr[];
  try {
    all = ctx.xattrsOf(path);
  } catch (error) {
    throw fail('cannot read xattrs of', path, error);
  }
  for (const attr of all) {
    const key = attr[0];
    if (ctx.fuseMarks && key.startsWith(FUSE_XATTR_PREFIX)) {
      if (key === FUSE_OPAQUE_XATTR) opaque ||= attr[1].length === 1 && attr[1][0] === 0x79;
    } else if (key.startsWith(ctx.overlayPrefix)) {
      if (key === ctx.opaqueName) opaque ||= attr[1].length === 1 && attr[1][0] === 0x79;
      else if (key.endsWith('.redirect') || key.endsWith('.metacopy')) {
        throw new UnionfsError(
          'EUNIONFSUNSUPPORTED',
          `${path} uses overlayfs's ${key.slice(ctx.overlayPrefix.length)} feature; mount with redirect_dir=off,metacopy=off (overlayMountData's diffable) to diff it`,
          { path },
        );
      }
    } else if (!ctx.skipXattrs && !HOST_XATTRS.has(key)) {
      xattrs ??= [];
      xattrs.push(attr);
    }
  }
  const h: TarHeader = {
    name: rel,
    type,
    mode: stats.mode & 0o7777,
    uid: stats.uid,
    gid: stats.gid,
    size: 0,
    mtime,
    xattrs,
  };
  switch (type) {
    case 'directory':
      encodeHeader(h, reserve);
      if (opaque) {
        const marker = `${rel}/${OPAQUE_WHITEOUT}`;
        encodeHeader(
          { name: marker, type: 'file', mode: 0, uid: h.uid, gid: h.gid, size: 0, mtime },
          reserve,
        );
      }
      return undefined;
    case 'symlink':
      try {
        h.linkname = readlinkSync(path);
      } catch (error) {
        throw fail('cannot read link', path, error);
      }
      encodeHeader(h, reserve);
      return undefined;
    case 'character-device':
    case 'block-device':
      [h.devmajor, h.devminor] = splitDev(stats.rdev);
      encodeHeader(h, reserve);
      return undefined;
    case 'fifo':
      encodeHeader(h, reserve);
      return undefined;
  }
  // A regular file.
  if (stats.nlink > 1 && ctx.links) {
    const key = `${stats.dev}:${stats.ino}`;
    const first = ctx.links.get(key);
    if (first !== undefined) {
      h.type = 'link';
      h.linkname = first;
      encodeHeader(h, reserve);
      return undefined;
    }
    ctx.links.set(key, rel);
  }
  h.size = stats.size;
  encodeHeader(h, reserve);
  if (stats.size > ctx.smallMax) return { large: path, size: stats.size, seen: stats };
  const padded = Math.ceil(stats.size / BLOCK) * BLOCK;
  const [buf, off] = reserve(padded);
  readSmall(path, stats, buf, off);
  buf.fill(0, off + stats.size, off + padded);
  return undefined;
}

export function changed(path: string, how = 'changed size'): UnionfsError {
  return new UnionfsError('EUNIONFSIO', `${path} ${how} while it was read; diff a stopped container`, {
    path,
  });
}

/** The error for a file that is no longer the one listed (another file, a FIFO, a device…). */
export function replaced(path: string): UnionfsError {
  return changed(path, 'was replaced');
}

function readSmall(path: string, seen: Stats, buf: Buffer, off: number): void {
  const size = seen.size;
  let fd: number;
  try {
    fd = openSync(path, OPEN_FLAGS);
  } catch (error) {
    throw fail('cannot open', path, error);
  }
  try {
    if (!sameFile(fstatSync(fd), seen)) throw replaced(path);
    let done = 0;
    while (done < size) {
      const n = readSync(fd, buf, off + done, size - done, null);
      if (n === 0) throw changed(path);
      done += n;
    }
  } catch (error) {
    throw fail('cannot read', path, error);
  } finally {
    closeSync(fd);
  }
}
