/**
 * What went wrong, as a stable string to branch on:
 * - `EUNIONFSPATH`: a path is relative, empty, or holds a character overlayfs cannot take (`:` `,` `\`).
 * - `EUNIONFSOPTIONS`: the mount options do not make sense (no lower, upper without work, too many layers…).
 * - `EUNIONFSMOUNT`: the kernel refused the overlay mount.
 * - `EUNIONFSUNMOUNT`: the overlay could not be unmounted.
 * - `EUNIONFSUNSUPPORTED`: something overlayfs or an OCI layer cannot express (a redirect or metacopy
 *   upper, a socket, a file literally named `.wh.*`, a non-UTF-8 name).
 * - `EUNIONFSTOOL`: a helper program (`getfattr`, `setfattr`, `mknod`) is missing or failed.
 * - `EUNIONFSIO`: reading, writing, linking or removing a file failed.
 */
export type UnionfsErrorCode =
  | 'EUNIONFSPATH'
  | 'EUNIONFSOPTIONS'
  | 'EUNIONFSMOUNT'
  | 'EUNIONFSUNMOUNT'
  | 'EUNIONFSUNSUPPORTED'
  | 'EUNIONFSTOOL'
  | 'EUNIONFSIO';

export interface UnionfsErrorDetails {
  /** The file, directory or mount point the error is about. */
  path?: string;
  /** The underlying errno name (`EBUSY`, `ENOENT`…) when a system call failed. */
  errno?: string;
  cause?: unknown;
}

/** Every error thrown by @box/unionfs. Branch on `code`, not only on `instanceof`. */
export class UnionfsError extends Error {
  override readonly name = 'UnionfsError';
  readonly code: UnionfsErrorCode;
  readonly path: string | undefined;
  readonly errno: string | undefined;

  constructor(code: UnionfsErrorCode, message: string, details: UnionfsErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.path = details.path;
    this.errno = details.errno ?? errnoOf(details.cause);
  }
}

/** True for a UnionfsError (also one from another copy of this package), optionally of one code. */
export function isUnionfsError(error: unknown, code?: UnionfsErrorCode): error is UnionfsError {
  return (
    error instanceof Error &&
    error.name === 'UnionfsError' &&
    (code === undefined || (error as UnionfsError).code === code)
  );
}

/** The `code` of a Node.js or @box/sys system error (`ENOENT`, `EBUSY`…), if it has one. */
export function errnoOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

/** Wraps a failed file operation in an `EUNIONFSIO` error naming the path. */
export function ioError(what: string, path: string, cause: unknown): UnionfsError {
  const errno = errnoOf(cause);
  return new UnionfsError('EUNIONFSIO', `${what} ${path}: ${errno ?? String(cause)}`, { path, cause });
}
