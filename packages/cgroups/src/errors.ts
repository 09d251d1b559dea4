/**
 * What went wrong, as a stable string to branch on:
 * - `ECGROUPCONTROLLER`: a controller was asked for that this host does not offer.
 * - `ECGROUPUNSUPPORTED`: the controller is there but lacks a feature (swap accounting, v2 device rules…).
 * - `ECGROUPVALUE`: a resource value, size or CPU list is invalid.
 * - `ECGROUPPATH`: the cgroup path is empty, absolute-escaping or has `.`/`..` parts.
 * - `ECGROUPMODE`: no usable cgroup hierarchy, or the requested mode does not match the host.
 * - `ECGROUPIO`: reading, writing, creating or removing a cgroup file or directory failed.
 * - `ECGROUPBUSY`: a cgroup could not be removed because it still holds processes.
 * - `ECGROUPTIMEOUT`: a freeze did not settle in time.
 */
export type CgroupErrorCode =
  | 'ECGROUPCONTROLLER'
  | 'ECGROUPUNSUPPORTED'
  | 'ECGROUPVALUE'
  | 'ECGROUPPATH'
  | 'ECGROUPMODE'
  | 'ECGROUPIO'
  | 'ECGROUPBUSY'
  | 'ECGROUPTIMEOUT';

export interface CgroupErrorDetails {
  /** The cgroup file or directory the error is about. */
  path?: string;
  /** The controller involved, e.g. `memory`. */
  controller?: string;
  /** The underlying errno name (`EINVAL`, `EBUSY`…) when a file operation failed. */
  errno?: string;
  cause?: unknown;
}

/** Every error thrown by @box/cgroups. Branch on `code`, not only on `instanceof`. */
export class CgroupError extends Error {
  override readonly name = 'CgroupError';
  readonly code: CgroupErrorCode;
  readonly path: string | undefined;
  readonly controller: string | undefined;
  readonly errno: string | undefined;

  constructor(code: CgroupErrorCode, message: string, details: CgroupErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.path = details.path;
    this.controller = details.controller;
    this.errno = details.errno;
  }
}

/** True for a CgroupError (also one from another copy of this package), optionally of one code. */
export function isCgroupError(error: unknown, code?: CgroupErrorCode): error is CgroupError {
  return (
    error instanceof Error &&
    error.name === 'CgroupError' &&
    (code === undefined || (error as CgroupError).code === code)
  );
}

/** The `code` of a Node.js system error (`ENOENT`, `EBUSY`…), if it has one. */
export function errnoOf(error: unknown): string | undefined {
  if (isCgroupError(error)) return error.errno;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The error for a controller this host lacks. */
export function missingController(controller: string, where: string): CgroupError {
  return new CgroupError(
    'ECGROUPCONTROLLER',
    `cgroup controller "${controller}" is not available (${where})`,
    { controller },
  );
}

/** Runs a controller's step, adding the controller's name to a CgroupError that lacks one. */
export async function withController<T>(controller: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (isCgroupError(error) && error.controller === undefined) {
      throw new CgroupError(error.code, `${controller}: ${error.message}`, {
        path: error.path,
        controller,
        errno: error.errno,
        cause: error,
      });
    }
    throw error;
  }
}
