/**
 * Copying files into and out of a container's root (`box cp`), like `cp -a -P`.
 *
 * Why this is not `cp -a "$root$path"`: the container's files belong to whoever
 * controls the container, and box runs as root on the host. A path through the
 * container's root on the host (/proc/PID/root/..., or a mounted overlay) is
 * resolved by the kernel against the *host's* root as soon as it meets an
 * absolute symlink: a container symlink `/tmp/evil -> /etc` would make a copy
 * into `/tmp/evil/` write the host's /etc, and a copy out of it read the host's
 * files. Resolving the path first and copying afterwards does not help either: the
 * container can swap a directory and a symlink between the two steps (and `cp`
 * walks the paths again by name).
 *
 * So every container-side lookup here is one openat2(2) relative to a directory fd
 * of the container's root with RESOLVE_IN_ROOT (absolute symlinks and ".." resolve
 * against that root, as they would inside the container) and RESOLVE_NO_MAGICLINKS
 * (no /proc/PID/fd or /proc/PID/root jumps out of it). Everything below that point
 * is fd-relative: entries are opened with O_PATH|O_NOFOLLOW and read through the
 * fd, created with O_CREAT|O_EXCL (which never follows a symlink), mkdirat +
 * O_NOFOLLOW, symlinkat or mknodat, and their owners, modes and times set on the
 * fd or with AT_SYMLINK_NOFOLLOW. Whatever the container renames meanwhile, the
 * copy can only end up reading or writing the container's own files. An existing
 * symlink (or other non-directory) where the copy puts an entry is replaced, never
 * followed. Without openat2 (Linux < 5.6) copying is refused rather than done unsafely.
 *
 * Host-side paths are the caller's own and are resolved normally.
 */
import {
  type BigIntStats,
  closeSync,
  fchmodSync,
  fchownSync,
  fstatSync,
  readdirSync,
  readSync,
  statSync,
  writeSync,
} from 'node:fs';
import { posix } from 'node:path';
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_SYMLINK_NOFOLLOW,
  fchmodat,
  fchownat,
  futimens,
  linkat,
  mkdirat,
  mknodat,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_NOFOLLOW,
  O_PATH,
  O_RDONLY,
  O_WRONLY,
  openat,
  openat2,
  RESOLVE_IN_ROOT,
  RESOLVE_NO_MAGICLINKS,
  readlinkat,
  SyscallError,
  symlinkat,
  unlinkat,
  utimensat,
} from '@box/sys';
import { RuntimeError } from '../errors.js';
import { kernelFileSystem } from './kernel-fs.js';
import { reopenForReading } from './read.js';

/** Why a copy was refused or failed; `code` tells the kind. */
export class CopyError extends RuntimeError {
  override readonly name = 'CopyError';
  constructor(
    code: 'ENOSRC' | 'ENODEST' | 'ECONFLICT' | 'EKERNELFS' | 'ENOOPENAT2' | 'EROOT' | 'ECOPY',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const S_IFBLK = 0o060000;
const S_IFCHR = 0o020000;
const IN_ROOT = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
/** How often an entry the container keeps recreating is replaced before giving up. */
const REPLACE_TRIES = 20;
/** Files with several links whose copy is kept open to link the next names to it. */
const MAX_LINKED = 1024;

function errno(error: unknown): string | undefined {
  return error instanceof SyscallError ? error.code : undefined;
}

/** One side of a copy: how its paths are opened. */
interface Side {
  open(path: string, flags: number): number;
}

/** The container's side: every lookup confined to the root fd. */
function containerSide(rootfd: number): Side {
  return {
    open(path, flags) {
      for (let tries = 0; ; tries++) {
        try {
          return openat2(rootfd, path, { flags, resolve: IN_ROOT });
        } catch (error) {
          // EAGAIN: a rename raced with a ".." lookup; the kernel asks to try again.
          if (errno(error) === 'EAGAIN' && tries < 100) continue;
          if (errno(error) === 'ENOSYS') {
            throw new CopyError(
              'ENOOPENAT2',
              'copying needs openat2(2) (Linux 5.6 or later) to stay inside the container; not copying',
              { cause: error },
            );
          }
          throw error;
        }
      }
    },
  };
}

const hostSide: Side = { open: (path, flags) => openat(AT_FDCWD, path, flags) };

/** Opens a container's root directory (a path on the host) as an O_PATH fd. */
function openRoot(root: string): number {
  let fd: number;
  try {
    fd = openat(AT_FDCWD, root, O_PATH | O_DIRECTORY);
  } catch (error) {
    throw new CopyError('ECOPY', `cannot open the container's root: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const own = statSync('/');
  const st = fstatSync(fd);
  if (st.dev === own.dev && st.ino === own.ino) {
    closeSync(fd);
    // e.g. /proc/PID/root of a pid reused by a host process.
    throw new CopyError('EROOT', `${root} is the host's root directory, not a container's`);
  }
  return fd;
}

function basenameOf(path: string): string {
  return posix.basename(posix.normalize(path));
}

interface Source {
  /** O_PATH fd of the entry to copy. */
  fd: number;
  stat: BigIntStats;
  name: string;
}

interface Target {
  /** Directory fd the entry is made in. */
  dir: number;
  name: string;
  /** Copy the source directory's contents into `dir` itself (name unused). */
  contents?: boolean;
}

/**
 * Where `cp -a SRC DEST` puts SRC: into DEST when DEST is a directory (symlinks to one
 * followed, on its own side), otherwise at DEST itself, whose parent must exist.
 */
function target(side: Side, dest: string, source: Source, describe: (p: string) => string): Target {
  try {
    const dir = side.open(dest, O_RDONLY | O_DIRECTORY);
    if (source.name === '' || source.name === '/') return { dir, name: '', contents: true };
    return { dir, name: source.name };
  } catch (error) {
    const code = errno(error);
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw error;
    if (dest.endsWith('/')) {
      throw new CopyError('ENODEST', `no such directory: ${describe(dest)}`, { cause: error });
    }
    if (code === 'ENOTDIR' && (source.stat.mode & BigInt(S_IFMT)) === BigInt(S_IFDIR)) {
      throw new CopyError('ECONFLICT', `cannot overwrite non-directory ${describe(dest)} with a directory`, {
        cause: error,
      });
    }
  }
  const parent = posix.dirname(dest);
  let dir: number;
  try {
    dir = side.open(parent, O_RDONLY | O_DIRECTORY);
  } catch (error) {
    const code = errno(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new CopyError('ENODEST', `no such directory: ${describe(parent)}`, { cause: error });
    }
    throw error;
  }
  return { dir, name: basenameOf(dest) };
}

class Copier {
  /** Copies made of files with several links, by the source's dev:ino. */
  private readonly linked = new Map<string, number>();

  /**
   * `fromContainer`: the source is a container's and the copy lands on the host: files of
   * kernel file systems are refused, device nodes skipped and set-id bits dropped. Otherwise
   * the copy lands in a container, and never in one of its kernel file systems.
   */
  constructor(
    private readonly fromContainer = false,
    private readonly owner?: CopyOwner,
  ) {}

  /** The owner a copy gets: `owner` when given, else the source's. */
  private uid(st: BigIntStats): number {
    return this.owner?.uid ?? Number(st.uid);
  }

  private gid(st: BigIntStats): number {
    return this.owner?.gid ?? Number(st.gid);
  }

  /** The mode a copy gets: the source's, without setuid/setgid when it comes out of a container. */
  private mode(st: BigIntStats): number {
    const mode = Number(st.mode) & 0o7777;
    return this.fromContainer ? mode & ~0o6000 : mode;
  }

  close(): void {
    for (const fd of this.linked.values()) closeSync(fd);
    this.linked.clear();
  }

  /** Copies the entry open as `src` (O_PATH) to `name` in `dir`. */
  entry(src: number, st: BigIntStats, dir: number, name: string | Buffer): void {
    const type = Number(st.mode) & S_IFMT;
    if (type === S_IFDIR) {
      this.directory(src, st, dir, name);
      return;
    }
    if (type === S_IFREG) {
      this.file(src, st, dir, name);
      return;
    }
    // Out of a container, device nodes are not made on the host: a node the container made
    // (say, for the host's disk, mode 666) would open that device to anyone who reaches it.
    if (this.fromContainer && (type === S_IFBLK || type === S_IFCHR)) return;
    if (type === S_IFLNK) {
      const link = readlinkat(src, '');
      this.replace(dir, name, () => symlinkat(link, dir, name));
    } else {
      // FIFOs, sockets and device nodes, as cp -a makes them.
      this.replace(dir, name, () => mknodat(dir, name, Number(st.mode) & (S_IFMT | 0o777), st.rdev));
    }
    fchownat(dir, name, this.uid(st), this.gid(st), AT_SYMLINK_NOFOLLOW);
    if (type !== S_IFLNK) fchmodat(dir, name, this.mode(st), AT_SYMLINK_NOFOLLOW);
    utimensat(dir, name, st, AT_SYMLINK_NOFOLLOW);
  }

  /**
   * Runs `make` (which fails with EEXIST on any existing entry and never follows one),
   * removing what is in the way first. A directory in the way is refused.
   */
  private replace<T>(dir: number, name: string | Buffer, make: () => T): T {
    for (let tries = 0; ; tries++) {
      try {
        return make();
      } catch (error) {
        if (errno(error) !== 'EEXIST' || tries >= REPLACE_TRIES) throw error;
      }
      try {
        unlinkat(dir, name);
      } catch (error) {
        const code = errno(error);
        if (code === 'EISDIR' || code === 'EPERM') {
          throw new CopyError(
            'ECONFLICT',
            `cannot overwrite directory ${String(name)} with a non-directory`,
            {
              cause: error,
            },
          );
        }
        if (code !== 'ENOENT') throw error;
      }
    }
  }

  private file(src: number, st: BigIntStats, dir: number, name: string | Buffer): void {
    const fs = this.fromContainer ? kernelFileSystem(src) : undefined;
    if (fs !== undefined) {
      throw new CopyError(
        'EKERNELFS',
        `refusing to copy a file of the kernel's ${fs} file system out of the container`,
      );
    }
    const key = `${st.dev}:${st.ino}`;
    const first = st.nlink > 1n ? this.linked.get(key) : undefined;
    if (first !== undefined) {
      this.replace(dir, name, () => linkat(first, '', dir, name, AT_EMPTY_PATH));
      return;
    }
    // The O_PATH fd pins the inode: reopening it through /proc/self/fd reads exactly that file.
    const input = reopenForReading(src, 'a file to copy');
    let output: number | undefined;
    try {
      const out = this.replace(dir, name, () =>
        openat(dir, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW, 0o600),
      );
      output = out;
      const buf = Buffer.allocUnsafe(1 << 20);
      for (;;) {
        const n = readSync(input, buf, 0, buf.length, null);
        if (n === 0) break;
        for (let off = 0; off < n; ) off += writeSync(out, buf, off, n - off);
      }
      fchownSync(out, this.uid(st), this.gid(st));
      fchmodSync(out, this.mode(st));
      futimens(out, st);
      if (st.nlink > 1n && this.linked.size < MAX_LINKED) {
        this.linked.set(key, out);
        output = undefined;
      }
    } finally {
      closeSync(input);
      if (output !== undefined) closeSync(output);
    }
  }

  private directory(src: number, st: BigIntStats, dir: number, name: string | Buffer): void {
    const out = this.makeDirectory(dir, name);
    try {
      if (!(this.fromContainer && kernelFileSystem(src) !== undefined)) this.contents(src, out);
      fchownSync(out, this.uid(st), this.gid(st));
      fchmodSync(out, this.mode(st));
      futimens(out, st);
    } finally {
      closeSync(out);
    }
  }

  /** Copies the entries of the directory open as `src` into the directory fd `out`. */
  contents(src: number, out: number): void {
    const input = openat(src, '.', O_RDONLY | O_DIRECTORY);
    try {
      // /proc/self/fd/N is exactly the directory open as N, wherever it has moved.
      for (const child of readdirSync(`/proc/self/fd/${input}`, { encoding: 'buffer' })) {
        let fd: number;
        try {
          fd = openat(input, child, O_PATH | O_NOFOLLOW);
        } catch (error) {
          if (errno(error) === 'ENOENT') continue; // gone since the listing
          throw error;
        }
        try {
          this.entry(fd, fstatSync(fd, { bigint: true }), out, child);
        } finally {
          closeSync(fd);
        }
      }
    } finally {
      closeSync(input);
    }
  }

  /** A directory `name` in `dir`, made or merged into, opened without following a symlink. */
  private makeDirectory(dir: number, name: string | Buffer): number {
    for (let tries = 0; ; tries++) {
      try {
        mkdirat(dir, name, 0o700);
      } catch (error) {
        if (errno(error) !== 'EEXIST') throw error;
      }
      try {
        const fd = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
        const fs = this.fromContainer ? undefined : kernelFileSystem(fd);
        if (fs !== undefined) {
          closeSync(fd);
          throw new CopyError(
            'EKERNELFS',
            `refusing to write into the kernel's ${fs} file system in the container`,
          );
        }
        return fd;
      } catch (error) {
        if (error instanceof CopyError) throw error;
        const code = errno(error);
        // A symlink or other non-directory in the way: replaced, as a tar extraction would.
        if ((code !== 'ELOOP' && code !== 'ENOTDIR' && code !== 'ENOENT') || tries >= REPLACE_TRIES)
          throw error;
      }
      try {
        unlinkat(dir, name);
      } catch (error) {
        if (errno(error) !== 'ENOENT' && errno(error) !== 'EISDIR') throw error;
      }
    }
  }
}

function copy(
  from: Side,
  srcPath: string,
  srcFlags: number,
  to: Side,
  dest: string,
  describe: Describe,
  owner: CopyOwner | undefined,
): void {
  let srcfd: number;
  try {
    srcfd = from.open(srcPath, O_PATH | srcFlags);
  } catch (error) {
    const code = errno(error);
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') {
      throw new CopyError('ENOSRC', `no such file or directory: ${describe.src(srcPath)}`, { cause: error });
    }
    if (error instanceof CopyError) throw error;
    throw new CopyError('ECOPY', `copying failed: ${(error as Error).message}`, { cause: error });
  }
  const copier = new Copier(from !== hostSide, owner);
  let where: Target | undefined;
  try {
    const stat = fstatSync(srcfd, { bigint: true });
    where = target(to, dest, { fd: srcfd, stat, name: basenameOf(srcPath) }, describe.dest);
    const destFs = to === hostSide ? undefined : kernelFileSystem(where.dir);
    if (destFs !== undefined) {
      throw new CopyError(
        'EKERNELFS',
        `refusing to write into the kernel's ${destFs} file system in the container`,
      );
    }
    if (where.contents) {
      if ((Number(stat.mode) & S_IFMT) !== S_IFDIR) {
        throw new CopyError('ECONFLICT', `cannot copy ${describe.src(srcPath)} over a directory`);
      }
      copier.contents(srcfd, where.dir);
    } else {
      copier.entry(srcfd, stat, where.dir, where.name);
    }
  } catch (error) {
    if (error instanceof CopyError) throw error;
    throw new CopyError('ECOPY', `copying failed: ${(error as Error).message}`, { cause: error });
  } finally {
    copier.close();
    if (where) closeSync(where.dir);
    closeSync(srcfd);
  }
}

/** Who owns what a copy makes (host ids), instead of the owners of its source. */
export interface CopyOwner {
  uid: number;
  gid: number;
}

export interface CopyOptions {
  /** Every file, directory and link the copy makes gets this owner; default: its source's. */
  owner?: CopyOwner;
}

interface Describe {
  src(path: string): string;
  dest(path: string): string;
}

/**
 * Copies the host path `source` into the container whose root directory is `root`
 * (on the host: /proc/PID/root of a running container, or its mounted rootfs) at the
 * container path `dest`, like `cp -a -P`: into `dest` if it is a directory, otherwise
 * as `dest`. Owners (unless `options.owner`), modes, times, symlinks (never followed), device
 * nodes and hard links within the copy are kept. Container symlinks are resolved inside `root`; no
 * host path outside `root` is ever written. Throws CopyError.
 */
export function copyIntoRoot(root: string, source: string, dest: string, options: CopyOptions = {}): void {
  const rootfd = openRoot(root);
  try {
    const inside = containerSide(rootfd);
    copy(
      hostSide,
      source,
      O_NOFOLLOW,
      inside,
      dest,
      {
        src: (p) => p,
        dest: (p) => `${p} in the container`,
      },
      options.owner,
    );
  } finally {
    closeSync(rootfd);
  }
}

/**
 * Copies the container path `source` (symlinks followed inside `root`, so never to
 * the host's files) out of the container whose root directory is `root` to the host
 * path `dest`, like `cp -a -P`. Symlinks inside a copied directory stay symlinks.
 * Throws CopyError (code ENOSRC when the source does not exist in the container).
 */
export function copyFromRoot(root: string, source: string, dest: string, options: CopyOptions = {}): void {
  const rootfd = openRoot(root);
  try {
    const inside = containerSide(rootfd);
    copy(
      inside,
      source,
      0,
      hostSide,
      dest,
      {
        src: (p) => `${p} in the container`,
        dest: (p) => p,
      },
      options.owner,
    );
  } finally {
    closeSync(rootfd);
  }
}
