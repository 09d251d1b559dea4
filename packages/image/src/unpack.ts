/**
 * Streaming, hostile-safe layer unpacking.
 *
 * Every tar is treated as hostile. The rules that keep an archive inside its directory:
 * - Entry names are made relative (a leading `/` is dropped, as GNU tar and docker do) and
 *   normalised; a name or hard-link target that still climbs out with `..` is refused.
 * - While resolving an entry's parent directories nothing is followed: every component must be a
 *   real directory, either created by this call (tracked in memory) or, when applying onto an
 *   existing tree, seen with `lstat`. A symlink (or file) in the middle of a path is refused, so
 *   `a -> /` followed by `a/etc/passwd` cannot write to the host.
 * - Files are created with `O_CREAT | O_EXCL | O_NOFOLLOW`; an existing entry is removed first
 *   (never followed), as a later tar entry replaces an earlier one.
 * - Hard links must point at a non-directory that is already inside the tree; `link(2)` does not
 *   follow a final symlink.
 * - Whiteout names are a single path component, their directory is resolved like any parent.
 * - Device nodes are only made when running as root (or when `devices` says so); otherwise skipped.
 *
 * Speed: the entry handler does its work with synchronous fs calls (one open/write/fchown/fchmod/
 * futimes/close per small file) instead of a promise or a write stream per entry. Directory
 * modes and times are applied at the end, deepest first, so read-only directories and child
 * writes do not get in the way.
 */
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  closeSync,
  fchmodSync,
  fchownSync,
  constants as fsConstants,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join, posix } from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Decompress as ZstdDecompress } from 'fzstd';
import { type Header as Headers, extract as tarExtract } from 'tar-stream';
import { DigestStream, digestMismatch, Sha256, WorkerDigestStream } from './digest.js';
import { errnoOf, ImageError, isImageError } from './errors.js';
import { KEEP_DIR, SPLIT_FILE, SplitRecorder } from './tar-split.js';

/** xattr names of overlayfs (rootful and userxattr) and fuse-overlayfs: never taken from a layer. */
const OVERLAY_XATTRS = ['trusted.overlay.', 'user.overlay.', 'user.fuseoverlayfs.'];

export type Compression = 'none' | 'gzip' | 'zstd';

/** Where a whiteout or opaque marker was found. */
export interface WhiteoutInfo {
  /** The directory being written (for `unpackLayer`, the temporary sibling of the destination). */
  root: string;
  /** The path relative to `root` (posix, no leading `/`): the hidden entry, or the opaque directory. */
  path: string;
}

/**
 * Called for `.wh.<name>` entries. `dir` is the absolute path of the (real, already created)
 * parent directory inside the tree being written; `name` is a single path component.
 */
export type WhiteoutHook = (dir: string, name: string, info: WhiteoutInfo) => void | Promise<void>;
/** Called for `.wh..wh..opq` entries with the absolute path of the opaque directory. */
export type OpaqueHook = (dir: string, info: WhiteoutInfo) => void | Promise<void>;

export interface UnpackOptions {
  /** The layer's media type; decides the compression (and refuses unknown types). */
  mediaType?: string;
  /** `auto` (default) looks at the magic bytes. */
  compression?: Compression | 'auto';
  /** The digest of the stream as given (compressed). Mismatch → `EIMAGE_DIGEST`, nothing kept. */
  expectedDigest?: string;
  /**
   * The digest of the stream as given, already checked by the caller over these very bytes (a
   * blob the store downloaded and verified into a file of its own): not hashed a second time.
   */
  verifiedDigest?: string;
  /** The digest of the uncompressed tar. Mismatch → `EIMAGE_DIGEST`, nothing kept. */
  expectedDiffID?: string;
  /** Whiteout hook; the default deletes the hidden path (a flattened unpack). */
  onWhiteout?: WhiteoutHook;
  /** Opaque-directory hook; the default empties the directory of what this call did not write. */
  onOpaque?: OpaqueHook;
  /** Apply the archive's uid/gid. Default: when running as root. */
  chown?: boolean;
  /** Make character and block devices. Default: when running as root. */
  devices?: boolean;
  /** mknod(2) (`mode` includes the file type). Default: `@box/sys`'s, when it has one. */
  mknod?: (path: string, mode: number, major: number, minor: number) => void;
  /** lsetxattr(2) for `SCHILY.xattr.*` records. Default: `@box/sys`'s, when it has one. */
  setXattr?: (path: string, name: string, value: Buffer) => void;
  /**
   * `unpackLayer` only: a directory (the one that will hold `dir`) where an uncompressed tar's
   * tar-split is recorded (`tar-split.gz`, `tar-split.keep/`), so the tar can be rebuilt from the
   * files (`rebuildTar`) instead of being kept. Compressed layers are not split.
   */
  split?: string;
  /**
   * The stream's size when known (a file): from 64 MiB on, the uncompressed tar is hashed on a
   * worker thread (starting one costs more than hashing a small layer).
   */
  sizeHint?: number;
}

const PARALLEL_HASH_FROM = 64 << 20;

/** An entry that was not written, and why. */
export interface SkippedEntry {
  path: string;
  reason: string;
}

export interface UnpackResult {
  /** sha256 of the stream as given. */
  digest: string;
  /** sha256 of the uncompressed tar. */
  diffID: string;
  /** Bytes of the stream as given. */
  size: number;
  /** Bytes of the uncompressed tar. */
  diffSize: number;
  compression: Compression;
  /** Number of tar entries handled (whiteouts included). */
  entries: number;
  skipped: SkippedEntry[];
  /** A tar-split was recorded in `options.split` (the tar was uncompressed). */
  split: boolean;
}

const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';
const MEDIA_TYPE_COMPRESSION: Record<string, Compression> = {
  [OCI_LAYER]: 'none',
  [`${OCI_LAYER}+gzip`]: 'gzip',
  [`${OCI_LAYER}+zstd`]: 'zstd',
  'application/vnd.oci.image.layer.nondistributable.v1.tar': 'none',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd': 'zstd',
  'application/vnd.docker.image.rootfs.diff.tar': 'none',
  'application/vnd.docker.image.rootfs.diff.tar.gzip': 'gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip': 'gzip',
  'application/x-tar': 'none',
};

/** The compression of a layer media type; throws `EIMAGE_MEDIATYPE` for one that is not a layer. */
export function compressionOfMediaType(mediaType: string): Compression {
  const compression = MEDIA_TYPE_COMPRESSION[mediaType];
  if (compression === undefined) {
    throw new ImageError('EIMAGE_MEDIATYPE', `unsupported layer media type "${mediaType}"`);
  }
  return compression;
}

/** The compression told by a stream's first bytes; throws `EIMAGE_MEDIATYPE` for bzip2 and xz. */
export function detectCompression(head: Uint8Array): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  if (head[0] === 0x42 && head[1] === 0x5a && head[2] === 0x68) {
    throw new ImageError('EIMAGE_MEDIATYPE', 'unsupported compression: bzip2');
  }
  if (head[0] === 0xfd && head[1] === 0x37 && head[2] === 0x7a && head[3] === 0x58 && head[4] === 0x5a) {
    throw new ImageError('EIMAGE_MEDIATYPE', 'unsupported compression: xz');
  }
  return 'none';
}

/** A streaming zstd decompressor (pure JavaScript, fzstd). */
class ZstdStream extends Transform {
  #z = new ZstdDecompress((data) => {
    if (data.length > 0) this.push(Buffer.from(data.buffer, data.byteOffset, data.length));
  });
  override _transform(chunk: Buffer, _e: BufferEncoding, callback: TransformCallback): void {
    try {
      this.#z.push(chunk);
      callback();
    } catch (error) {
      callback(corrupt('zstd stream is corrupt', error));
    }
  }
  override _flush(callback: TransformCallback): void {
    try {
      this.#z.push(new Uint8Array(0), true);
      callback();
    } catch (error) {
      callback(corrupt('zstd stream is corrupt or truncated', error));
    }
  }
}

function corrupt(message: string, cause?: unknown, path?: string): ImageError {
  return new ImageError('EIMAGE_CORRUPT', message, { cause, path });
}

function unsafe(name: string, why: string): ImageError {
  return new ImageError('EIMAGE_UNSAFE_PATH', `tar entry "${name}" ${why}`, { path: name });
}

/** Turns stream failures into ImageErrors: ours pass, zlib/tar/zstd ones are `EIMAGE_CORRUPT`. */
function classify(error: unknown): ImageError {
  if (isImageError(error)) return error;
  const code = errnoOf(error);
  if (code?.startsWith('Z_') || code === 'ERR_STREAM_PREMATURE_CLOSE' || code === undefined) {
    const message = error instanceof Error ? error.message : String(error);
    return corrupt(`layer is corrupt or truncated: ${message}`, error);
  }
  return new ImageError('EIMAGE_IO', `unpacking the layer failed (${code})`, { cause: error });
}

/** The part of tar-stream's (streamx) entry stream that is used. */
interface EntryStream {
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  once(event: 'error', listener: (error: unknown) => void): unknown;
  once(event: 'end', listener: () => void): unknown;
  resume(): unknown;
}

// Kinds of paths known to exist in the tree.
const DIR = 1;
const SYMLINK = 2;
const OTHER = 4;
const NEW = 8; // written by this call

interface DirMeta {
  path: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
}

interface SysExtras {
  mknod?: (path: string, mode: number, major: number, minor: number) => void;
  lsetxattr?: (path: string, name: string, value: Buffer) => void;
}

let sysExtras: Promise<SysExtras> | undefined;
/** Loads mknod/lsetxattr from @box/sys lazily (koffi), only when an archive needs them. */
function loadSysExtras(): Promise<SysExtras> {
  sysExtras ??= import('@box/sys').then(
    (sys) => {
      const record = sys as unknown as Record<string, unknown>;
      return {
        mknod: typeof record.mknod === 'function' ? (record.mknod as SysExtras['mknod']) : undefined,
        lsetxattr:
          typeof record.lsetxattr === 'function' ? (record.lsetxattr as SysExtras['lsetxattr']) : undefined,
      };
    },
    () => ({}),
  );
  return sysExtras;
}

/** The process umask (read by setting it and putting it back, as `process.umask()` without an argument is deprecated). */
function currentUmask(): number {
  try {
    const mask = process.umask(0o022);
    process.umask(mask);
    return mask;
  } catch {
    return 0o777; // worker threads cannot change it: always fchmod
  }
}

const S_IFIFO = 0o010000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const OPEN_FLAGS = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW;
const WH_PREFIX = '.wh.';
const WH_META_PREFIX = '.wh..wh.';
const WH_OPAQUE = '.wh..wh..opq';

/** Writes the entries of one tar into `root`. Used by unpackLayer (fresh dir) and applyLayer. */
class Extractor {
  readonly kinds = new Map<string, number>();
  readonly dirs: DirMeta[] = [];
  readonly skipped: SkippedEntry[] = [];
  entries = 0;
  readonly chown: boolean;
  readonly devices: boolean;
  readonly uid: number;
  readonly gid: number;
  readonly umask: number;

  /** Files whose data the tar-split refers to, by path: the entry that wrote each. */
  readonly splitFiles = new Map<string, number>();

  constructor(
    readonly root: string,
    readonly fresh: boolean,
    readonly options: UnpackOptions,
    readonly split?: { recorder: SplitRecorder; dir: string },
  ) {
    const isRoot = process.getuid?.() === 0;
    this.uid = process.geteuid?.() ?? -1;
    this.gid = process.getegid?.() ?? -1;
    this.umask = currentUmask();
    this.chown = options.chown ?? isRoot;
    this.devices = options.devices ?? isRoot;
    this.kinds.set('', DIR);
  }

  /** The tree-relative path of an entry name: no leading `/`, normalised; `..` escapes refused. */
  relative(name: string): string {
    if (name.includes('\0')) throw unsafe(name, 'has a NUL byte in its name');
    let rel = posix.normalize(`./${name}`);
    if (rel === '.' || rel === './') return '';
    if (rel.endsWith('/')) rel = rel.slice(0, -1);
    if (rel.startsWith('/')) rel = rel.replace(/^\/+/, '');
    if (rel === '..' || rel.startsWith('../')) throw unsafe(name, 'points outside the layer');
    return rel;
  }

  abs(rel: string): string {
    return rel === '' ? this.root : join(this.root, rel);
  }

  /** What is at `rel` (without following), from memory or, for an existing tree, lstat. */
  kindOf(rel: string): number | undefined {
    const known = this.kinds.get(rel);
    if (known !== undefined || this.fresh) return known;
    try {
      const st = lstatSync(this.abs(rel));
      const kind = st.isDirectory() ? DIR : st.isSymbolicLink() ? SYMLINK : OTHER;
      this.kinds.set(rel, kind);
      return kind;
    } catch (error) {
      if (errnoOf(error) === 'ENOENT') return undefined;
      throw error;
    }
  }

  /** Makes sure every parent of `rel` is a real directory inside the tree, creating missing ones. */
  parents(rel: string, name: string, create = true): void {
    const parent = posix.dirname(rel);
    if (parent === '.' || parent === '') return;
    const known = this.kinds.get(parent);
    if (known !== undefined && known & DIR) return;
    let prefix = '';
    for (const component of parent.split('/')) {
      prefix = prefix === '' ? component : `${prefix}/${component}`;
      const kind = this.kindOf(prefix);
      if (kind === undefined) {
        if (!create) throw unsafe(name, `refers to "${prefix}", which does not exist`);
        mkdirSync(this.abs(prefix), 0o755);
        this.kinds.set(prefix, DIR | NEW);
      } else if (kind & SYMLINK) {
        throw unsafe(name, `goes through the symlink "${prefix}"`);
      } else if (!(kind & DIR)) {
        throw unsafe(name, `goes through "${prefix}", which is not a directory`);
      }
    }
  }

  /** Removes whatever is at `rel` (never following it) and forgets it and what was below it. */
  remove(rel: string, kind: number): void {
    const path = this.abs(rel);
    if (this.splitFiles.size > 0) this.keepSplitFiles(rel, kind);
    if (kind & DIR) {
      rmSync(path, { recursive: true, force: true });
      const below = `${rel}/`;
      for (const key of this.kinds.keys()) if (key.startsWith(below)) this.kinds.delete(key);
    } else {
      unlinkSync(path);
    }
    this.kinds.delete(rel);
  }

  /**
   * A later entry removes `rel`: the files in it whose data the tar-split refers to are kept
   * (a hard link by entry number in `tar-split.keep/`), so the tar can still be rebuilt.
   */
  keepSplitFiles(rel: string, kind: number): void {
    const split = this.split!;
    const doomed =
      kind & DIR
        ? [...this.splitFiles.keys()].filter((key) => key.startsWith(`${rel}/`) || rel === '')
        : this.splitFiles.has(rel)
          ? [rel]
          : [];
    if (doomed.length === 0) return;
    const keep = join(split.dir, KEEP_DIR);
    mkdirSync(keep, { mode: 0o700, recursive: true });
    for (const path of doomed) {
      linkSync(this.abs(path), join(keep, String(this.splitFiles.get(path))));
      this.splitFiles.delete(path);
    }
  }

  /** Clears the way for a new entry at `rel`; returns true when a directory is already there. */
  prepare(rel: string, isDir: boolean): boolean {
    const kind = this.kindOf(rel);
    if (kind === undefined) return false;
    if (isDir && kind & DIR) return true;
    if (rel === '') throw unsafe('/', 'would replace the layer directory itself');
    this.remove(rel, kind);
    return false;
  }

  owner(header: Headers): [number, number] {
    const pax = (header as { pax?: Record<string, string> | null }).pax;
    const uid = pax?.uid !== undefined ? Number.parseInt(pax.uid, 10) : (header.uid ?? 0);
    const gid = pax?.gid !== undefined ? Number.parseInt(pax.gid, 10) : (header.gid ?? 0);
    return [uid, gid];
  }

  /** Handles one entry; calls `next` when done (synchronously for everything but file data, hooks, devices). */
  entry(header: Headers, stream: EntryStream, next: (error?: unknown) => void): void {
    this.entries++;
    const name = header.name;
    const rel = this.relative(name);
    const base = rel === '' ? '' : posix.basename(rel);
    // What the parser reads of an entry that is not a file written below is raw: its header,
    // and its data (none for a directory: the parser reads none). A written file tells the
    // recorder where its data is (`file`).
    const { byteOffset } = header as unknown as { byteOffset: number };
    const size = header.size ?? 0;
    const writes =
      (header.type === 'file' || header.type === 'contiguous-file') &&
      size > 0 &&
      !base.startsWith(WH_PREFIX);
    if (!writes)
      this.split?.recorder.skipped(byteOffset, header.type === 'directory' ? byteOffset : byteOffset + size);
    if (base.startsWith(WH_PREFIX)) {
      stream.resume();
      this.whiteout(rel, base, name).then(() => next(), next);
      return;
    }
    switch (header.type) {
      case 'file':
      case 'contiguous-file':
        this.file(rel, name, header, stream, next);
        return;
      case 'directory':
        stream.resume();
        this.directory(rel, name, header);
        break;
      case 'symlink':
        stream.resume();
        this.symlink(rel, name, header);
        break;
      case 'link':
        stream.resume();
        this.hardlink(rel, name, header);
        break;
      case 'character-device':
      case 'block-device':
      case 'fifo':
        stream.resume();
        this.special(rel, name, header).then(() => next(), next);
        return;
      default:
        stream.resume();
        this.skipped.push({ path: rel, reason: `unsupported tar entry type ${String(header.type)}` });
    }
    next();
  }

  file(
    rel: string,
    name: string,
    header: Headers,
    stream: EntryStream,
    next: (error?: unknown) => void,
  ): void {
    if (rel === '') throw unsafe(name, 'is a file in place of the layer directory');
    this.parents(rel, name);
    this.prepare(rel, false);
    const path = this.abs(rel);
    const mode = (header.mode ?? 0o644) & 0o7777;
    const setid = (mode & 0o6000) !== 0;
    // Created with the archive's permission bits; fchmod below only when the umask took some away.
    const fd = openSync(path, OPEN_FLAGS, mode & 0o777);
    const createdMode = mode & 0o777 & ~this.umask;
    this.kinds.set(rel, OTHER | NEW);
    if (this.split && (header.size ?? 0) > 0) {
      const { byteOffset } = header as unknown as { byteOffset: number };
      this.split.recorder.file(this.entries, byteOffset, header.size!, rel);
      this.splitFiles.set(rel, this.entries);
    }
    let failed = false;
    const fail = (error: unknown) => {
      if (failed) return;
      failed = true;
      try {
        closeSync(fd);
      } catch {}
      stream.resume();
      next(error);
    };
    stream.on('data', (chunk: Buffer) => {
      if (failed) return;
      try {
        let offset = 0;
        while (offset < chunk.length) offset += writeSync(fd, chunk, offset, chunk.length - offset);
      } catch (error) {
        fail(error);
      }
    });
    stream.once('error', fail);
    stream.once('end', () => {
      if (failed) return;
      try {
        const [uid, gid] = this.owner(header);
        // Skip the calls that would change nothing (the file is new, owned by us).
        if (this.chown && (uid !== this.uid || gid !== this.gid)) fchownSync(fd, uid, gid);
        if (mode !== createdMode || setid) fchmodSync(fd, mode);
        const mtime = header.mtime ?? new Date(0);
        futimesSync(fd, mtime, mtime);
        closeSync(fd);
      } catch (error) {
        fail(error);
        return;
      }
      const xattrs = this.xattrs(header);
      if (xattrs === undefined) next();
      else this.applyXattrs(rel, xattrs).then(() => next(), next);
    });
  }

  directory(rel: string, name: string, header: Headers): void {
    this.parents(rel, name);
    const exists = this.prepare(rel, true);
    if (!exists) {
      mkdirSync(this.abs(rel), 0o700);
      this.kinds.set(rel, DIR | NEW);
    }
    const [uid, gid] = this.owner(header);
    this.dirs.push({
      path: rel,
      mode: (header.mode ?? 0o755) & 0o7777,
      uid,
      gid,
      mtime: header.mtime ?? new Date(0),
    });
    const xattrs = this.xattrs(header);
    if (xattrs !== undefined) this.pendingXattrs.push([rel, xattrs]);
  }

  readonly pendingXattrs: [string, Map<string, string>][] = [];

  symlink(rel: string, name: string, header: Headers): void {
    if (rel === '') throw unsafe(name, 'is a symlink in place of the layer directory');
    if (!header.linkname) throw corrupt(`tar entry "${name}" is a symlink without a target`, undefined, name);
    this.parents(rel, name);
    this.prepare(rel, false);
    const path = this.abs(rel);
    // The target is stored as data; it is never followed while unpacking.
    symlinkSync(header.linkname, path);
    this.kinds.set(rel, SYMLINK | NEW);
    const [uid, gid] = this.owner(header);
    if (this.chown) lchownSync(path, uid, gid);
    const mtime = header.mtime ?? new Date(0);
    lutimesSync(path, mtime, mtime);
  }

  hardlink(rel: string, name: string, header: Headers): void {
    if (rel === '') throw unsafe(name, 'is a hard link in place of the layer directory');
    if (!header.linkname)
      throw corrupt(`tar entry "${name}" is a hard link without a target`, undefined, name);
    const target = this.relative(header.linkname);
    if (target === rel) return;
    if (target === '') throw unsafe(name, 'is a hard link to the layer directory');
    this.parents(target, name, false);
    const kind = this.kindOf(target);
    if (kind === undefined)
      throw unsafe(name, `is a hard link to "${header.linkname}", which is not in the layer`);
    if (kind & DIR) throw unsafe(name, `is a hard link to the directory "${header.linkname}"`);
    this.parents(rel, name);
    this.prepare(rel, false);
    linkSync(this.abs(target), this.abs(rel));
    this.kinds.set(rel, (kind & ~NEW) | NEW);
  }

  async special(rel: string, name: string, header: Headers): Promise<void> {
    if (rel === '') throw unsafe(name, 'is a device in place of the layer directory');
    const type = header.type === 'fifo' ? S_IFIFO : header.type === 'block-device' ? S_IFBLK : S_IFCHR;
    if (type !== S_IFIFO && !this.devices) {
      this.skipped.push({ path: rel, reason: `${header.type} not made: devices need root` });
      return;
    }
    const mknod = this.options.mknod ?? (await loadSysExtras()).mknod;
    if (mknod === undefined) {
      this.skipped.push({ path: rel, reason: `${header.type} not made: no mknod binding in @box/sys` });
      return;
    }
    this.parents(rel, name);
    this.prepare(rel, false);
    const path = this.abs(rel);
    const mode = (header.mode ?? 0o600) & 0o7777;
    try {
      mknod(path, type | mode, header.devmajor ?? 0, header.devminor ?? 0);
    } catch (error) {
      this.skipped.push({ path: rel, reason: `${header.type} not made: ${(error as Error).message}` });
      return;
    }
    this.kinds.set(rel, OTHER | NEW);
    const [uid, gid] = this.owner(header);
    if (this.chown) lchownSync(path, uid, gid);
    chmodSync(path, mode);
    const mtime = header.mtime ?? new Date(0);
    lutimesSync(path, mtime, mtime);
  }

  async whiteout(rel: string, base: string, name: string): Promise<void> {
    const parentRel = posix.dirname(rel) === '.' ? '' : posix.dirname(rel);
    this.parents(rel, name);
    const dir = this.abs(parentRel);
    if (base === WH_OPAQUE) {
      const info = { root: this.root, path: parentRel };
      if (this.options.onOpaque) await this.options.onOpaque(dir, info);
      else this.defaultOpaque(parentRel);
      return;
    }
    if (base.startsWith(WH_META_PREFIX)) {
      this.skipped.push({ path: rel, reason: 'aufs metadata entry ignored' });
      return;
    }
    const hidden = base.slice(WH_PREFIX.length);
    if (hidden === '' || hidden === '.' || hidden === '..' || hidden.includes('/')) {
      throw unsafe(name, 'is a whiteout of an invalid name');
    }
    const hiddenRel = parentRel === '' ? hidden : `${parentRel}/${hidden}`;
    const info = { root: this.root, path: hiddenRel };
    if (this.options.onWhiteout) {
      // A hook may delete what it hides (overlay's char 0/0 whiteout replaces it): files of
      // this tar there are kept for the tar-split first, as `remove` does.
      const hiddenKind = this.kindOf(hiddenRel);
      if (this.splitFiles.size > 0 && hiddenKind !== undefined) this.keepSplitFiles(hiddenRel, hiddenKind);
      await this.options.onWhiteout(dir, hidden, info);
      // Forgotten with all below it, as `remove` does: later steps (the directories' modes and
      // xattrs at the end) trust what is known, and nothing below a whiteout is a directory now.
      this.kinds.delete(hiddenRel);
      const below = `${hiddenRel}/`;
      for (const key of this.kinds.keys()) if (key.startsWith(below)) this.kinds.delete(key);
      return;
    }
    const kind = this.kindOf(hiddenRel);
    if (kind !== undefined) this.remove(hiddenRel, kind);
  }

  /** Removes what the directory held before this call (lower content), keeping this layer's entries. */
  defaultOpaque(dirRel: string): void {
    const dir = this.abs(dirRel);
    for (const child of readdirSync(dir)) {
      const childRel = dirRel === '' ? child : `${dirRel}/${child}`;
      const kind = this.kindOf(childRel);
      if (kind !== undefined && !(kind & NEW)) this.remove(childRel, kind);
    }
  }

  xattrs(header: Headers): Map<string, string> | undefined {
    const pax = (header as { pax?: Record<string, string> | null }).pax;
    if (!pax) return undefined;
    let out: Map<string, string> | undefined;
    for (const key of Object.keys(pax)) {
      if (!key.startsWith('SCHILY.xattr.')) continue;
      const name = key.slice('SCHILY.xattr.'.length);
      // overlayfs's own marks (opaque, redirect, metacopy, origin, whiteout) are box's to make from
      // a layer's .wh. entries: one a layer carries would make the kernel's merge of the layers
      // differ from the one box checks container paths in (rootfs/resolve.ts).
      if (OVERLAY_XATTRS.some((prefix) => name.startsWith(prefix))) {
        this.skipped.push({ path: header.name, reason: `xattr ${name} not set: overlayfs's own` });
        continue;
      }
      out ??= new Map();
      out.set(name, pax[key]!);
    }
    return out;
  }

  async applyXattrs(rel: string, xattrs: Map<string, string>): Promise<void> {
    const set = this.options.setXattr ?? (await loadSysExtras()).lsetxattr;
    for (const [key, value] of xattrs) {
      if (set === undefined) {
        this.skipped.push({ path: rel, reason: `xattr ${key} not set: no lsetxattr binding in @box/sys` });
        continue;
      }
      // tar-stream decodes PAX values as UTF-8: a value that did not survive that is not applied.
      if (value.includes('\uFFFD')) {
        this.skipped.push({ path: rel, reason: `xattr ${key} not set: binary value` });
        continue;
      }
      try {
        set(this.abs(rel), key, Buffer.from(value, 'utf8'));
      } catch (error) {
        this.skipped.push({ path: rel, reason: `xattr ${key} not set: ${(error as Error).message}` });
      }
    }
  }

  /** Directory owners, modes and times, deepest first, after all children were written. */
  async finish(): Promise<void> {
    for (const [rel, xattrs] of this.pendingXattrs) {
      // As the owners and modes below: a directory a later entry removed is passed over. Its path
      // may now lead through a symlink that entry made (`x/sub/`, then `x -> /etc`), and
      // lsetxattr follows every component but the last: the layer would set file capabilities
      // or ACLs on the host's files.
      const kind = this.kinds.get(rel);
      if (kind === undefined || !(kind & DIR)) continue;
      await this.applyXattrs(rel, xattrs);
    }
    for (let i = this.dirs.length - 1; i >= 0; i--) {
      const dir = this.dirs[i]!;
      const kind = this.kinds.get(dir.path);
      if (kind === undefined || !(kind & DIR)) continue; // removed by a later entry or whiteout
      const path = this.abs(dir.path);
      if (this.chown) chownSync(path, dir.uid, dir.gid);
      chmodSync(path, dir.mode);
      utimesSync(path, dir.mtime, dir.mtime);
    }
  }
}

type Source = Readable | AsyncIterable<Uint8Array>;

async function extractInto(
  source: Source,
  root: string,
  fresh: boolean,
  options: UnpackOptions,
): Promise<UnpackResult> {
  let requested: Compression | 'auto' = options.compression ?? 'auto';
  if (options.mediaType !== undefined) {
    const byType = compressionOfMediaType(options.mediaType);
    if (requested === 'auto') requested = byType;
  }
  const iterator = (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  const compressed = new Sha256();
  let head = Buffer.alloc(0);
  let ended = false;
  try {
    while (head.length < 6) {
      const step = await iterator.next();
      if (step.done) {
        ended = true;
        break;
      }
      head = Buffer.concat([head, step.value]);
    }
  } catch (error) {
    throw classify(error);
  }
  let compression: Compression;
  try {
    const detected = detectCompression(head);
    compression = requested === 'auto' ? detected : requested;
    if (requested !== 'auto' && detected !== requested) {
      throw new ImageError(
        'EIMAGE_MEDIATYPE',
        `layer announced as ${requested} but its content is ${detected}`,
      );
    }
  } catch (error) {
    await iterator.return?.();
    throw error;
  }
  // An uncompressed stream is its own diff, and a verified one needs no second look: each is
  // hashed once (sha256 is most of the CPU of an unpack).
  const hashInput = compression !== 'none' && options.verifiedDigest === undefined;
  let inputSize = 0;
  async function* input(): AsyncGenerator<Uint8Array> {
    try {
      if (head.length > 0) {
        if (hashInput) compressed.update(head);
        inputSize += head.length;
        yield head;
      }
      while (!ended) {
        const step = await iterator.next();
        if (step.done) break;
        if (hashInput) compressed.update(step.value);
        inputSize += step.value.length;
        yield step.value;
      }
    } finally {
      if (!ended) await iterator.return?.();
    }
  }
  const split =
    options.split !== undefined && fresh && compression === 'none'
      ? { recorder: new SplitRecorder(join(options.split, SPLIT_FILE)), dir: options.split }
      : undefined;
  const extractor = new Extractor(root, fresh, options, split);
  // Big layers are hashed on a worker thread beside the unpack (see WorkerDigestStream).
  const diff = (options.sizeHint ?? 0) >= PARALLEL_HASH_FROM ? new WorkerDigestStream() : new DigestStream();
  const extract = tarExtract();
  extract.on('entry', (header, stream, next) => {
    try {
      extractor.entry(header, stream as unknown as EntryStream, next as (error?: unknown) => void);
    } catch (error) {
      // tar-stream destroys the entry stream with the error: without a listener it would be thrown.
      stream.on('error', () => {});
      stream.resume();
      next(error as Error);
    }
  });
  const stages: NodeJS.ReadWriteStream[] = [];
  if (compression === 'gzip') stages.push(createGunzip());
  else if (compression === 'zstd') stages.push(new ZstdStream());
  if (split) stages.push(splitTap(split.recorder));
  try {
    await pipeline([Readable.from(input(), { objectMode: false }), ...stages, diff, extract] as unknown as [
      Readable,
      NodeJS.WritableStream,
    ]);
    await extractor.finish();
    split?.recorder.finish();
  } catch (error) {
    split?.recorder.close();
    throw classify(error);
  }
  const digest = hashInput ? compressed.digest() : (options.verifiedDigest ?? diff.digest);
  if (options.expectedDigest !== undefined && digest !== options.expectedDigest) {
    throw digestMismatch('layer', options.expectedDigest, digest);
  }
  diff.verify('uncompressed layer (diffID)', options.expectedDiffID);
  return {
    digest,
    diffID: diff.digest,
    size: inputSize,
    diffSize: diff.size,
    compression,
    entries: extractor.entries,
    skipped: extractor.skipped,
    split: split !== undefined,
  };
}

/** Shows the tar-split recorder every byte on its way to the tar parser. */
function splitTap(recorder: SplitRecorder): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      try {
        recorder.write(chunk);
      } catch (error) {
        callback(error as Error);
        return;
      }
      callback(null, chunk);
    },
  });
}

/**
 * Unpacks a layer (tar, tar+gzip or tar+zstd, streamed) into `dir`, which must not exist yet.
 * The tar is written into a temporary sibling that is renamed to `dir` once the whole stream was
 * read and both digests matched; on any failure everything the call made is removed and an
 * ImageError is thrown (`EIMAGE_DIGEST`, `EIMAGE_CORRUPT`, `EIMAGE_UNSAFE_PATH`, `EIMAGE_MEDIATYPE`…).
 */
export async function unpackLayer(
  source: Source,
  dir: string,
  options: UnpackOptions = {},
): Promise<UnpackResult> {
  try {
    lstatSync(dir);
    throw new ImageError('EIMAGE_EXISTS', `cannot unpack into ${dir}: it already exists`, { path: dir });
  } catch (error) {
    if (isImageError(error)) throw error;
    if (errnoOf(error) !== 'ENOENT') throw classify(error);
  }
  const temp = join(dirname(dir), `.${basename(dir)}.unpack-${randomBytes(6).toString('hex')}`);
  try {
    mkdirSync(temp, 0o700);
    const result = await extractInto(source, temp, true, options);
    renameSync(temp, dir);
    return result;
  } catch (error) {
    const cleanupErrors: unknown[] = [];
    try {
      rmSync(temp, { recursive: true, force: true });
    } catch (cleanupError) {
      cleanupErrors.push(cleanupError);
    }
    const failure = classify(error);
    failure.cleanupErrors.push(...cleanupErrors);
    throw failure;
  }
}

/**
 * Applies a layer onto an existing directory (a flattened unpack: whiteouts delete by default).
 * Same safety rules as `unpackLayer`, but not atomic: on failure the directory is left part-way.
 */
export async function applyLayer(
  source: Source,
  dir: string,
  options: UnpackOptions = {},
): Promise<UnpackResult> {
  const st = lstatSync(dir, { throwIfNoEntry: false });
  if (!st?.isDirectory()) {
    throw new ImageError('EIMAGE_NOT_FOUND', `cannot apply a layer to ${dir}: not a directory`, {
      path: dir,
    });
  }
  return extractInto(source, dir, false, options);
}
