import { describeErrno, errnoName } from '@box/sys';

export interface NetlinkErrorDetails {
  /** The kernel's own words about the failure (its extended acknowledgement), when it gave some. */
  detail?: string;
  cause?: unknown;
}

/**
 * A netlink operation that failed: what box was doing (`add veth box0a1b2c with peer eth0 in
 * netns of pid 4242`) and the errno the kernel answered, by name in `code` (`EEXIST`,
 * `ENODEV`). Also thrown, with the errno a kernel would give, for arguments refused before
 * anything was sent (`EINVAL` for a malformed address) and for a socket that could not be
 * opened (the SyscallError is its `cause`).
 */
export class NetlinkError extends Error {
  override readonly name = 'NetlinkError';
  /** The errno's name: branch on this (`EEXIST` for a link that is already there). */
  readonly code: string;
  readonly errno: number;
  /** What was being done, as it starts the message. */
  readonly operation: string;
  readonly detail: string | undefined;

  constructor(operation: string, errno: number, details: NetlinkErrorDetails = {}) {
    const code = errnoName(errno);
    const detail = details.detail ? `: ${details.detail}` : '';
    super(
      `${operation}: ${code} (${describeErrno(errno)})${detail}`,
      details.cause === undefined ? undefined : { cause: details.cause },
    );
    this.code = code;
    this.errno = errno;
    this.operation = operation;
    this.detail = details.detail;
  }
}

/** True for a NetlinkError (also one from another copy of this package), optionally of one errno name. */
export function isNetlinkError(error: unknown, code?: string): error is NetlinkError {
  return (
    error instanceof Error &&
    error.name === 'NetlinkError' &&
    (code === undefined || (error as NetlinkError).code === code)
  );
}

export const EINVAL = 22;
export const ENODEV = 19;
export const ETIMEDOUT = 110;

/** An argument refused before anything reached the kernel. */
export function invalidArgument(operation: string, detail: string): NetlinkError {
  return new NetlinkError(operation, EINVAL, { detail });
}
