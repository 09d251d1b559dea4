/**
 * fd-relative file system calls (the *at family and openat2) that Node.js does not
 * offer. Names are strings or raw bytes (a Buffer, for names that are not UTF-8).
 * Each failure throws a SyscallError carrying the call, the errno name and the name.
 */
import { cString } from './c-string.js';
import { SyscallError } from './errors.js';
import { lastErrno, libc } from './libc.js';

/** A file name: text, or its raw bytes. */
export type FileName = string | Buffer;

/** openat2(2) `resolve` flags. */
export const RESOLVE_NO_XDEV = 0x01;
export const RESOLVE_NO_MAGICLINKS = 0x02;
export const RESOLVE_NO_SYMLINKS = 0x04;
export const RESOLVE_BENEATH = 0x08;
export const RESOLVE_IN_ROOT = 0x10;
export const RESOLVE_CACHED = 0x20;

export const O_EXCL = 0o200;
export const O_TRUNC = 0o1000;
export const AT_SYMLINK_NOFOLLOW = 0x100;
export const AT_REMOVEDIR = 0x200;
export const AT_EMPTY_PATH = 0x1000;

const SYS_OPENAT2 = 437;

function text(name: FileName): string {
  return typeof name === 'string' ? name : name.toString('utf8');
}

function where(dirfd: number, name: FileName): string {
  return `${text(name)} (dir fd ${dirfd})`;
}

function check(ret: number | bigint, syscall: string, path: string): number {
  const n = Number(ret);
  if (n < 0) throw new SyscallError(syscall, lastErrno(), { path });
  return n;
}

export interface OpenHow {
  /** open(2) flags; O_CLOEXEC is always added. */
  flags: number;
  /** Mode for O_CREAT / O_TMPFILE (0 otherwise). */
  mode?: number;
  /** RESOLVE_* flags. */
  resolve?: number;
}

/**
 * openat2(2): opens `name` relative to `dirfd` (close-on-exec). With RESOLVE_IN_ROOT,
 * `dirfd` is the root for the whole lookup: absolute symlinks and ".." stay inside it.
 * Throws SyscallError with code ENOSYS on kernels before 5.6.
 */
export function openat2(dirfd: number, name: FileName, how: OpenHow): number {
  const { koffi } = libc();
  const path = cString(name, 'openat2');
  const buf = Buffer.alloc(24);
  buf.writeBigUInt64LE(BigInt((how.flags | 0o2000000) >>> 0), 0);
  buf.writeBigUInt64LE(BigInt(how.mode ?? 0), 8);
  buf.writeBigUInt64LE(BigInt(how.resolve ?? 0), 16);
  const ret = libc().syscall4(SYS_OPENAT2, dirfd, koffi.address(path), koffi.address(buf), buf.length);
  return check(ret, 'openat2', where(dirfd, name));
}

/** The f_type of the file system `fd` is on (fstatfs(2)), e.g. 0x9fa0 for proc. */
export function fileSystemType(fd: number): number {
  const buf = Buffer.alloc(120); // struct statfs on x86_64
  check(libc().fstatfs(fd, buf), 'fstatfs', `fd ${fd}`);
  return Number(buf.readBigInt64LE(0));
}

/** openat(2), close-on-exec. */
export function openat(dirfd: number, name: FileName, flags: number, mode = 0): number {
  return check(
    libc().openat(dirfd, cString(name, 'openat'), flags | 0o2000000, 'unsigned int', mode),
    'openat',
    where(dirfd, name),
  );
}

export function mkdirat(dirfd: number, name: FileName, mode: number): void {
  check(libc().mkdirat(dirfd, cString(name, 'mkdirat'), mode), 'mkdirat', where(dirfd, name));
}

/** symlinkat(2): makes `name` in `dirfd` a symlink holding `target`. */
export function symlinkat(target: FileName, dirfd: number, name: FileName): void {
  check(
    libc().symlinkat(cString(target, 'symlinkat'), dirfd, cString(name, 'symlinkat')),
    'symlinkat',
    where(dirfd, name),
  );
}

/**
 * readlinkat(2): the target of the symlink `name` in `dirfd`, as bytes. With an empty
 * name, `dirfd` is an O_PATH|O_NOFOLLOW fd of the symlink itself.
 */
export function readlinkat(dirfd: number, name: FileName): Buffer {
  for (let size = 4096; ; size *= 4) {
    const buf = Buffer.alloc(size);
    const n = check(
      libc().readlinkat(dirfd, cString(name, 'readlinkat'), buf, size),
      'readlinkat',
      where(dirfd, name),
    );
    if (n < size) return buf.subarray(0, n);
  }
}

/** fchownat(2); pass AT_SYMLINK_NOFOLLOW to change a symlink itself. */
export function fchownat(dirfd: number, name: FileName, uid: number, gid: number, flags: number): void {
  check(libc().fchownat(dirfd, cString(name, 'fchownat'), uid, gid, flags), 'fchownat', where(dirfd, name));
}

/** fchmodat(2); AT_SYMLINK_NOFOLLOW refuses (EOPNOTSUPP) rather than follow a symlink. */
export function fchmodat(dirfd: number, name: FileName, mode: number, flags: number): void {
  check(libc().fchmodat(dirfd, cString(name, 'fchmodat'), mode, flags), 'fchmodat', where(dirfd, name));
}

/** Access and modification times in nanoseconds since the epoch. */
export interface FileTimes {
  atimeNs: bigint;
  mtimeNs: bigint;
}

/** struct timespec[2] {atime, mtime}, as utimensat(2) takes them. */
export function timespecs(times: FileTimes): Buffer {
  const buf = Buffer.alloc(32);
  const ns = 1_000_000_000n;
  // Floor division, so times before 1970 keep a nanosecond part in [0, 1e9).
  const split = (t: bigint): [bigint, bigint] => {
    const rem = ((t % ns) + ns) % ns;
    return [(t - rem) / ns, rem];
  };
  const [as, ans] = split(times.atimeNs);
  const [ms, mns] = split(times.mtimeNs);
  buf.writeBigInt64LE(as, 0);
  buf.writeBigInt64LE(ans, 8);
  buf.writeBigInt64LE(ms, 16);
  buf.writeBigInt64LE(mns, 24);
  return buf;
}

/** utimensat(2) with nanosecond times; pass AT_SYMLINK_NOFOLLOW for a symlink itself. */
export function utimensat(dirfd: number, name: FileName, times: FileTimes, flags: number): void {
  check(
    libc().utimensat(dirfd, cString(name, 'utimensat'), timespecs(times), flags),
    'utimensat',
    where(dirfd, name),
  );
}

/** futimens(3): sets an open file's times in nanoseconds. */
export function futimens(fd: number, times: FileTimes): void {
  check(libc().futimens(fd, timespecs(times)), 'futimens', `fd ${fd}`);
}

/** unlinkat(2); AT_REMOVEDIR removes an empty directory. */
export function unlinkat(dirfd: number, name: FileName, flags = 0): void {
  check(libc().unlinkat(dirfd, cString(name, 'unlinkat'), flags), 'unlinkat', where(dirfd, name));
}

/** mknodat(2): `mode` includes the file type; `dev` as st_rdev encodes it. */
export function mknodat(dirfd: number, name: FileName, mode: number, dev: bigint | number = 0): void {
  check(libc().mknodat(dirfd, cString(name, 'mknodat'), mode, BigInt(dev)), 'mknodat', where(dirfd, name));
}

/** linkat(2); with AT_EMPTY_PATH and an empty `oldName`, links the file open as `oldDirfd`. */
export function linkat(
  oldDirfd: number,
  oldName: FileName,
  newDirfd: number,
  newName: FileName,
  flags = 0,
): void {
  check(
    libc().linkat(oldDirfd, cString(oldName, 'linkat'), newDirfd, cString(newName, 'linkat'), flags),
    'linkat',
    where(newDirfd, newName),
  );
}

/** A run of a file's bytes that holds data (not a hole). */
export interface DataExtent {
  offset: number;
  length: number;
}

const SYS_LSEEK = 8;
const SEEK_DATA = 3;
const SEEK_HOLE = 4;
const ENXIO = 6;
const EIO = 5;

/**
 * The parts of the open regular file `fd` that hold data, below `size` (lseek SEEK_DATA and
 * SEEK_HOLE): a sparse file's holes are left out. A file system without hole tracking reports
 * the whole file as one extent. Stops after `limit + 1` extents (a caller refuses a file with more
 * than it can take). Moves the fd's file offset.
 */
export function dataExtents(fd: number, size: number, limit = Number.POSITIVE_INFINITY): DataExtent[] {
  const extents: DataExtent[] = [];
  const seek = (offset: number, whence: number): number | undefined => {
    const ret = Number(libc().syscall3(SYS_LSEEK, fd, offset, whence));
    if (ret >= 0) return ret;
    if (lastErrno() === ENXIO) return undefined; // no data at or after offset
    throw new SyscallError('lseek', lastErrno(), { path: `fd ${fd}` });
  };
  let offset = 0;
  while (offset < size && extents.length <= limit) {
    const data = seek(offset, SEEK_DATA);
    if (data === undefined || data >= size) break;
    const hole = Math.min(seek(data, SEEK_HOLE) ?? size, size);
    // A file changing meanwhile (or a file system that answers badly) must not stall the walk.
    if (data < offset || hole <= data) throw new SyscallError('lseek', EIO, { path: `fd ${fd}` });
    extents.push({ offset: data, length: hole - data });
    offset = hole;
  }
  return extents;
}
