/**
 * Host-side system calls that Node.js does not offer. Each failure throws a
 * SyscallError carrying the call, the errno name and the path or arguments.
 */

import { assertNoNul, cString } from './c-string.js';
import {
  AT_EMPTY_PATH,
  MS,
  MSG_CMSG_CLOEXEC,
  MSG_DONTWAIT,
  mountFlagsToString,
  SCM_RIGHTS,
  SOCK_CLOEXEC,
  SOL_SOCKET,
  TIOCGWINSZ,
  TIOCSWINSZ,
  WNOHANG,
} from './constants.js';
import { SyscallError } from './errors.js';
import { lastErrno, libc } from './libc.js';

function check(ret: number | bigint, syscall: string, path?: string, args?: string): number {
  const n = Number(ret);
  if (n < 0) throw new SyscallError(syscall, lastErrno(), { path, args });
  return n;
}

export function mount(
  source: string | null,
  target: string,
  fstype: string | null,
  flags: number,
  data: string | null = null,
): void {
  assertNoNul('mount', source, target, fstype, data);
  check(
    libc().mount(source, target, fstype, flags, data),
    'mount',
    target,
    `(source ${source ?? 'none'}, type ${fstype ?? 'none'}, flags ${mountFlagsToString(flags)})`,
  );
}

export function umount2(target: string, flags = 0): void {
  assertNoNul('umount2', target);
  check(libc().umount2(target, flags), 'umount2', target);
}

/** Changes the calling thread's namespaces (see process-model notes before using). */
export function unshare(flags: number): void {
  check(libc().unshare(flags), 'unshare', undefined, `0x${flags.toString(16)}`);
}

/**
 * setns(2). `fd` is a namespace file (/proc/PID/ns/*), or since Linux 5.8 a pidfd: then
 * `nstype` may hold several CLONE_NEW* flags, and the caller joins those namespaces of that
 * process all at once (or none of them, and ESRCH if the process has ended).
 */
export function setns(fd: number, nstype: number, path?: string): void {
  check(libc().setns(fd, nstype), 'setns', path ?? `fd ${fd}`);
}

/** pipe2(2); both ends close-on-exec. Returns [read, write]. */
export function pipe(): [number, number] {
  const fds = [0, 0];
  check(libc().pipe2(fds, 0o2000000), 'pipe2');
  return [fds[0]!, fds[1]!];
}

/**
 * A close-on-exec AF_UNIX stream socket connected to `path` (e.g. runc's --console-socket),
 * synchronously.
 */
export function connectUnix(path: string): number {
  const name = Buffer.from(path, 'utf8');
  if (name.length >= 108 || name.includes(0)) throw new SyscallError('connect', 36, { path }); // ENAMETOOLONG
  const addr = Buffer.alloc(110);
  addr.writeUInt16LE(1, 0); // AF_UNIX
  name.copy(addr, 2);
  const c = libc();
  const fd = c.socket(1, 1 | 0o2000000, 0);
  check(fd, 'socket');
  if (c.connect(fd, addr, 2 + name.length + 1) !== 0) {
    const errno = lastErrno();
    c.close(fd);
    throw new SyscallError('connect', errno, { path });
  }
  return fd;
}

/** socketpair(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC). */
export function socketPair(): [number, number] {
  const fds = [0, 0];
  check(libc().socketpair(1, 1 | 0o2000000, 0, fds), 'socketpair');
  return [fds[0]!, fds[1]!];
}

const EINTR = 4;

/**
 * socket(2), always close-on-exec (SOCK_CLOEXEC is added to `type`). The socket belongs to
 * the network namespace of the calling thread, for good: see @box/network for sockets made
 * in another one.
 */
export function socket(domain: number, type: number, protocol: number): number {
  return check(
    libc().socket(domain, type | SOCK_CLOEXEC, protocol),
    'socket',
    undefined,
    `(domain ${domain}, type ${type}, protocol ${protocol})`,
  );
}

/** bind(2) to a socket address already laid out in `address` (sockaddr_nl, sockaddr_un…). */
export function bind(fd: number, address: Buffer): void {
  check(libc().bind(fd, address, address.length), 'bind', `fd ${fd}`);
}

/**
 * setsockopt(2). A number is passed as a C int; a Buffer as it is (a struct timeval for
 * SO_RCVTIMEO). `what` names the option in an error (`SO_RCVTIMEO`).
 */
export function setsockopt(
  fd: number,
  level: number,
  name: number,
  value: number | Buffer,
  what?: string,
): void {
  let data: Buffer;
  if (typeof value === 'number') {
    data = Buffer.alloc(4);
    data.writeInt32LE(value);
  } else {
    data = value;
  }
  check(
    libc().setsockopt(fd, level, name, data, data.length),
    'setsockopt',
    `fd ${fd}`,
    what ?? `(level ${level}, option ${name})`,
  );
}

/** send(2) of `data` as one message (a datagram); EINTR is retried. Returns the bytes sent. */
export function send(fd: number, data: Buffer, flags = 0): number {
  for (;;) {
    const n = Number(libc().send(fd, data, data.length, flags));
    if (n >= 0) return n;
    const errno = lastErrno();
    if (errno !== EINTR) throw new SyscallError('send', errno, { path: `fd ${fd}` });
  }
}

/**
 * recvfrom(2) into `buffer`; EINTR is retried (a receive with SO_RCVTIMEO is never
 * restarted by the kernel). Returns the length received, or with MSG_TRUNC the datagram's
 * full length, which may exceed `buffer`. With `from`, the sender's address is written there
 * (as much of it as fits). EAGAIN (MSG_DONTWAIT, or SO_RCVTIMEO expired) is thrown as such.
 */
export function recvFrom(fd: number, buffer: Buffer, flags = 0, from?: Buffer): number {
  const length = [from?.length ?? 0];
  for (;;) {
    const n = Number(libc().recvfrom(fd, buffer, buffer.length, flags, from ?? null, from ? length : null));
    if (n >= 0) return n;
    const errno = lastErrno();
    if (errno !== EINTR) throw new SyscallError('recvfrom', errno, { path: `fd ${fd}` });
  }
}

export function close(fd: number): void {
  check(libc().close(fd), 'close', `fd ${fd}`);
}

/**
 * Marks every fd from `first` up close-on-exec (close_range with CLOSE_RANGE_CLOEXEC,
 * Linux 5.11): fds this process inherited then never reach a program it starts.
 */
export function markCloseOnExecFrom(first: number): void {
  check(libc().syscall3(436, first, 0xffffffff, 4), 'close_range', undefined, `${first}-max, CLOEXEC`);
}

/** Duplicates fd to the lowest free number >= min, close-on-exec. */
export function dupCloexec(fd: number, min = 3): number {
  return check(libc().dupfd(fd, 1030, min), 'fcntl(F_DUPFD_CLOEXEC)', `fd ${fd}`);
}

/**
 * Sets O_NONBLOCK on fd's open file description (shared with its duplicates): a write that would
 * block fails with EAGAIN instead of stopping the process.
 */
export function setNonBlocking(fd: number): void {
  const flags = check(libc().dupfd(fd, 3 /* F_GETFL */, 0), 'fcntl(F_GETFL)', `fd ${fd}`);
  check(libc().dupfd(fd, 4 /* F_SETFL */, flags | 0o4000 /* O_NONBLOCK */), 'fcntl(F_SETFL)', `fd ${fd}`);
}

export type WaitStatus = { exitCode: number; signal: null } | { exitCode: null; signal: number };

/** waitpid(pid, WNOHANG): the status if the child has ended, otherwise null. */
export function tryWait(pid: number): WaitStatus | null {
  const status = [0];
  const ret = libc().waitpid(pid, status, WNOHANG);
  if (ret === 0) return null;
  check(ret, 'waitpid', `pid ${pid}`);
  const s = status[0]!;
  if ((s & 0x7f) === 0) return { exitCode: (s >> 8) & 0xff, signal: null };
  return { exitCode: null, signal: s & 0x7f };
}

export function kill(pid: number, signal: number): void {
  check(libc().kill(pid, signal), 'kill', `pid ${pid}`, `signal ${signal}`);
}

export function isatty(fd: number): boolean {
  return libc().isatty(fd) === 1;
}

export interface WindowSize {
  rows: number;
  cols: number;
}

export function getWindowSize(fd: number): WindowSize {
  const ws = Buffer.alloc(8);
  check(libc().ioctlPtr(fd, TIOCGWINSZ, ws), 'ioctl(TIOCGWINSZ)', `fd ${fd}`);
  return { rows: ws.readUInt16LE(0), cols: ws.readUInt16LE(2) };
}

export function setWindowSize(fd: number, size: WindowSize): void {
  const ws = Buffer.alloc(8);
  ws.writeUInt16LE(size.rows, 0);
  ws.writeUInt16LE(size.cols, 2);
  check(libc().ioctlPtr(fd, TIOCSWINSZ, ws), 'ioctl(TIOCSWINSZ)', `fd ${fd}`);
}

/**
 * Receives one file descriptor sent with SCM_RIGHTS on a unix socket, without
 * blocking. Returns null when nothing is waiting.
 */
export function receiveFd(socket: number): number | null {
  const { koffi } = libc();
  const data = Buffer.alloc(1);
  const control = Buffer.alloc(24);
  const iov = Buffer.alloc(16);
  iov.writeBigUInt64LE(koffi.address(data), 0);
  iov.writeBigUInt64LE(1n, 8);
  const msg = Buffer.alloc(56);
  msg.writeBigUInt64LE(koffi.address(iov), 16);
  msg.writeBigUInt64LE(1n, 24);
  msg.writeBigUInt64LE(koffi.address(control), 32);
  msg.writeBigUInt64LE(24n, 40);
  // MSG_CMSG_CLOEXEC: the received fd must not reach a process this one starts.
  const ret = Number(libc().recvmsg(socket, msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
  if (ret < 0) {
    const errno = lastErrno();
    if (errno === 11) return null;
    throw new SyscallError('recvmsg', errno, { path: `fd ${socket}` });
  }
  if (ret === 0) return null;
  const level = control.readInt32LE(8);
  const type = control.readInt32LE(12);
  if (level !== SOL_SOCKET || type !== SCM_RIGHTS) return null;
  return control.readInt32LE(16);
}

/** pidfd_open(2) (Linux 5.3): an fd that names process `pid` (close-on-exec) until it is closed. */
export function pidfdOpen(pid: number): number {
  return check(libc().syscall3(434, pid, 0, 0), 'pidfd_open', `pid ${pid}`);
}

/**
 * pidfd_getfd(2) (Linux 5.6): a copy, in this process and close-on-exec, of the open file
 * `targetFd` of the process a pidfd names (it needs ptrace access to that process).
 */
export function pidfdGetfd(pidfd: number, targetFd: number): number {
  return check(libc().syscall3(438, pidfd, targetFd, 0), 'pidfd_getfd', `pidfd ${pidfd}`, `fd ${targetFd}`);
}

/**
 * pidfd_send_signal(2) (Linux 5.1): signals the process a pidfd names, never another one
 * that got its pid later. ESRCH once that process has been reaped; signal 0 probes for it
 * (a zombie still counts).
 */
export function pidfdSendSignal(pidfd: number, signal: number): void {
  check(libc().syscall4(424, pidfd, signal, 0, 0), 'pidfd_send_signal', `pidfd ${pidfd}`, `signal ${signal}`);
}

const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;

/** eventfd(2), close-on-exec and non-blocking: a counter that poll(2) sees as readable when non-zero. */
export function eventfd(initial = 0): number {
  return check(libc().eventfd(initial, EFD_CLOEXEC | EFD_NONBLOCK), 'eventfd');
}

const LOCK_EX = 2;
const LOCK_NB = 4;

/**
 * Takes an exclusive flock(2) on fd. Returns false, without waiting, when another
 * open file holds it. The lock ends when every copy of the fd is closed (or the
 * process dies), which makes it a liveness token.
 */
export function tryLock(fd: number, path?: string): boolean {
  if (libc().flock(fd, LOCK_EX | LOCK_NB) === 0) return true;
  const errno = lastErrno();
  if (errno === 11) return false;
  throw new SyscallError('flock', errno, { path: path ?? `fd ${fd}` });
}

/** makedev(3) for Linux's dev_t encoding. */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffn) << 8n) | ((ma & ~0xfffn) << 32n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n);
}

/** mknod(2): `mode` includes the file type (S_IFCHR, S_IFBLK, S_IFIFO). */
export function mknod(path: string, mode: number, major = 0, minor = 0): void {
  assertNoNul('mknod', path);
  check(libc().mknod(path, mode, makedev(major, minor)), 'mknod', path);
}

/** lsetxattr(2): sets an extended attribute without following a final symlink. */
export function lsetxattr(path: string, name: string, value: Buffer | string): void {
  const data = typeof value === 'string' ? Buffer.from(value) : value;
  assertNoNul('lsetxattr', path, name);
  check(libc().lsetxattr(path, name, data, data.length, 0), 'lsetxattr', path, name);
}

const ENODATA = 61;

/** lgetxattr(2): the attribute's value, or null when the file has no such attribute. */
export function lgetxattr(path: string, name: string): Buffer | null {
  assertNoNul('lgetxattr', path, name);
  return getxattrWith((buf, size) => libc().lgetxattr(path, name, buf, size), 'lgetxattr', path, name);
}

/**
 * fgetxattr(2) on an open file (not an O_PATH fd: the kernel refuses those with EBADF): the
 * attribute's value, or null when the file has no such attribute.
 */
export function fgetxattr(fd: number, name: string): Buffer | null {
  assertNoNul('fgetxattr', name);
  return getxattrWith((buf, size) => libc().fgetxattr(fd, name, buf, size), 'fgetxattr', `fd ${fd}`, name);
}

function getxattrWith(
  call: (buf: Buffer, size: number) => number | bigint,
  syscall: string,
  path: string,
  name: string,
): Buffer | null {
  let size = 256;
  for (;;) {
    const buf = Buffer.alloc(size);
    const n = Number(call(buf, size));
    if (n >= 0) return buf.subarray(0, n);
    const errno = lastErrno();
    if (errno === ENODATA) return null;
    if (errno === 34 && size < 1 << 16) {
      size *= 16; // ERANGE
      continue;
    }
    throw new SyscallError(syscall, errno, { path, args: name });
  }
}

/** llistxattr(2): the names of a file's extended attributes. */
export function llistxattr(path: string): string[] {
  assertNoNul('llistxattr', path);
  const size = Number(libc().llistxattr(path, null, 0));
  if (size < 0) throw new SyscallError('llistxattr', lastErrno(), { path });
  if (size === 0) return [];
  const buf = Buffer.alloc(size);
  const n = check(libc().llistxattr(path, buf, size), 'llistxattr', path);
  return buf.subarray(0, n).toString('utf8').split('\0').filter(Boolean);
}

/**
 * bpf(2) with `attr` (the union bpf_attr, zero-padded). Returns the call's result (an fd
 * for BPF_PROG_LOAD). On failure the error carries the kernel's verifier log when given one.
 */
export function bpf(cmd: number, attr: Buffer, what: string): number {
  const { koffi } = libc();
  const ret = Number(libc().syscall3(321, cmd, koffi.address(attr), attr.length));
  if (ret < 0) throw new SyscallError('bpf', lastErrno(), { args: what });
  return ret;
}

/** Options of a detached clone (mount_setattr's MOUNT_ATTR_* bits). */
export interface CloneMountOptions {
  readonly?: boolean;
  nosuid?: boolean;
  nodev?: boolean;
  noexec?: boolean;
  /** No symlink is followed on the clone, neither in a path's middle nor at its end. */
  nosymfollow?: boolean;
}

const OPEN_TREE_CLONE = 1;
const OPEN_TREE_CLOEXEC = 0o2000000;
const AT_SYMLINK_NOFOLLOW = 0x100;
const MOUNT_ATTR = { readonly: 0x1, nosuid: 0x2, nodev: 0x4, noexec: 0x8, nosymfollow: 0x200000 } as const;

/**
 * A detached, private bind mount of the directory `path` (not of what is mounted below it), with
 * `options`, open as a close-on-exec fd: open_tree(2) with OPEN_TREE_CLONE, then mount_setattr(2)
 * (Linux 5.14 for nosymfollow; EINVAL before). It is in no mount namespace: no other process sees it, and it goes away when the last fd
 * of it is closed, also when this process is killed. Reached by path as `/proc/self/fd/FD/...`.
 * Needs CAP_SYS_ADMIN over the caller's mount namespace.
 */
export function cloneMount(path: string, options: CloneMountOptions = {}): number {
  const c = libc();
  // Named, so they stay alive while the calls that are given only their addresses run.
  const pathz = cString(path, 'open_tree');
  const empty = Buffer.from('\0');
  const flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_SYMLINK_NOFOLLOW;
  const fd = check(c.syscall3(428, -100, c.koffi.address(pathz), flags), 'open_tree', path);
  let set = 0;
  for (const [name, bit] of Object.entries(MOUNT_ATTR))
    if (options[name as keyof CloneMountOptions]) set |= bit;
  const attr = Buffer.alloc(32); // struct mount_attr { attr_set, attr_clr, propagation, userns_fd }
  attr.writeBigUInt64LE(BigInt(set), 0);
  // Private: a clone of a shared mount would be a peer of it, and see the mounts made there later.
  attr.writeBigUInt64LE(BigInt(MS.PRIVATE), 16);
  const ret = Number(
    c.syscall5(442, fd, c.koffi.address(empty), AT_EMPTY_PATH, c.koffi.address(attr), attr.length),
  );
  if (ret < 0) {
    const errno = lastErrno();
    c.close(fd);
    throw new SyscallError('mount_setattr', errno, { path, args: JSON.stringify(options) });
  }
  return fd;
}

/** The address of a buffer, for pointers inside structures handed to the kernel. */
export function addressOf(buffer: Buffer): bigint {
  return libc().koffi.address(buffer);
}
