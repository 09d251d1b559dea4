import { constants } from 'node:os';

const ERRNO_NAMES = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) {
  if (!ERRNO_NAMES.has(value)) ERRNO_NAMES.set(value, name);
}

/** The symbolic name of an errno value, e.g. 2 → "ENOENT". */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `E${errno}`;
}

/** The errno value of a symbolic name, e.g. "ENOENT" → 2. */
export function errnoValue(name: keyof typeof constants.errno): number {
  return constants.errno[name];
}

export interface SyscallErrorDetails {
  /** The path, fd or other argument that identifies what the call was about. */
  path?: string;
  /** Other arguments worth showing, already rendered as text (flags as names). */
  args?: string;
}

/** A failed system call: which call, which errno, on what. */
export class SyscallError extends Error {
  override readonly name = 'SyscallError';
  readonly code: string;
  readonly syscall: string;
  readonly errno: number;
  readonly path: string | undefined;
  readonly args: string | undefined;

  constructor(syscall: string, errno: number, details: SyscallErrorDetails = {}) {
    const code = errnoName(errno);
    const where = [details.path, details.args].filter(Boolean).join(' ');
    super(`${syscall}${where ? ` ${where}` : ''}: ${code} (${describeErrno(errno)})`);
    this.code = code;
    this.syscall = syscall;
    this.errno = errno;
    this.path = details.path;
    this.args = details.args;
  }
}

/**
 * A step of a child's start-up program failed before `execve` (or `execve` itself failed).
 * `step` names what the child was doing, e.g. `mount proc on /proc`.
 */
export class ChildSetupError extends Error {
  override readonly name = 'ChildSetupError';
  readonly code: string;
  readonly step: string;
  readonly syscall: string;
  readonly errno: number;

  constructor(step: string, syscall: string, errno: number) {
    const code = errnoName(errno);
    super(`${step}: ${code} (${describeErrno(errno)})`);
    this.code = code;
    this.step = step;
    this.syscall = syscall;
    this.errno = errno;
  }
}

const DESCRIPTIONS: Record<string, string> = {
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or directory',
  ESRCH: 'no such process',
  EINTR: 'interrupted system call',
  EIO: 'input/output error',
  EBADF: 'bad file descriptor',
  EAGAIN: 'resource temporarily unavailable',
  ENOMEM: 'cannot allocate memory',
  EACCES: 'permission denied',
  EFAULT: 'bad address',
  EBUSY: 'device or resource busy',
  EEXIST: 'file exists',
  ENOTDIR: 'not a directory',
  EISDIR: 'is a directory',
  EINVAL: 'invalid argument',
  EMFILE: 'too many open files',
  ENOSPC: 'no space left on device',
  EROFS: 'read-only file system',
  ENAMETOOLONG: 'file name too long',
  ENOSYS: 'function not implemented',
  ENOTEMPTY: 'directory not empty',
  ELOOP: 'too many levels of symbolic links',
  ENOEXEC: 'exec format error',
  ETXTBSY: 'text file busy',
  EUSERS: 'too many users',
  ENODEV: 'no such device',
  ERANGE: 'numerical result out of range',
  ENOTSOCK: 'socket operation on non-socket',
  EMSGSIZE: 'message too long',
  EPROTONOSUPPORT: 'protocol not supported',
  EOPNOTSUPP: 'operation not supported',
  EAFNOSUPPORT: 'address family not supported by protocol',
  EADDRINUSE: 'address already in use',
  EADDRNOTAVAIL: 'cannot assign requested address',
  ENETDOWN: 'network is down',
  ENETUNREACH: 'network is unreachable',
  ENOBUFS: 'no buffer space available',
  ENOTCONN: 'transport endpoint is not connected',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'no route to host',
};

/** What an errno means, in a few words (`file exists` for EEXIST), or `errno N`. */
export function describeErrno(errno: number): string {
  return DESCRIPTIONS[errnoName(errno)] ?? `errno ${errno}`;
}
