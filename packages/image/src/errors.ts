/**
 * What went wrong, as a stable string to branch on:
 * - `EIMAGE_NOT_FOUND`: no image, layer or blob by that name, ID or digest.
 * - `EIMAGE_REFERENCE`: a reference (name, tag, digest) does not parse.
 * - `EIMAGE_DIGEST`: content does not hash to the digest it was announced with.
 * - `EIMAGE_CORRUPT`: a tar, compressed stream, manifest, config or archive is malformed or truncated.
 * - `EIMAGE_MEDIATYPE`: a media type or compression this package cannot handle.
 * - `EIMAGE_IN_USE`: an image is used by a container (or another holder) and `force` was not given.
 * - `EIMAGE_UNSAFE_PATH`: a tar entry, link or whiteout would reach outside the directory it is unpacked into.
 * - `EIMAGE_EXISTS`: the destination of an unpack or save already exists.
 * - `EIMAGE_LOCKED`: the store's lock could not be taken in time.
 * - `EIMAGE_IO`: a file operation in the store failed.
 * - `EIMAGE_REGISTRY`: a registry could not be reached (no network, connection refused, unknown
 *   host, timeout) or answered something other than the distribution protocol allows (5xx after
 *   retries, a missing upload location, a body larger than announced).
 * - `EIMAGE_AUTH`: a registry refused the request (401/403): no or wrong credentials, or no access.
 * - `EIMAGE_PLATFORM`: an image index has no manifest for the wanted platform.
 * - `EIMAGE_TOO_LARGE`: a manifest, config or blob exceeds the size limit or its descriptor's size.
 */
export type ImageErrorCode =
  | 'EIMAGE_NOT_FOUND'
  | 'EIMAGE_REFERENCE'
  | 'EIMAGE_DIGEST'
  | 'EIMAGE_CORRUPT'
  | 'EIMAGE_MEDIATYPE'
  | 'EIMAGE_IN_USE'
  | 'EIMAGE_UNSAFE_PATH'
  | 'EIMAGE_EXISTS'
  | 'EIMAGE_LOCKED'
  | 'EIMAGE_IO'
  | 'EIMAGE_REGISTRY'
  | 'EIMAGE_AUTH'
  | 'EIMAGE_PLATFORM'
  | 'EIMAGE_TOO_LARGE';

export interface ImageErrorDetails {
  /** The file, or the path inside a tar, the error is about. */
  path?: string;
  /** The image reference the error is about, as the caller wrote it. */
  reference?: string;
  /** The expected and actual digests of an `EIMAGE_DIGEST` error. */
  expected?: string;
  actual?: string;
  /** The registry URL a registry error is about. */
  url?: string;
  /** The HTTP status a registry answered with, when it answered. */
  status?: number;
  /** Errors from cleaning up after the main failure, kept so they are not lost. */
  cleanupErrors?: unknown[];
  cause?: unknown;
}

/** Every error thrown by @box/image. Branch on `code`, not only on `instanceof`. */
export class ImageError extends Error {
  override readonly name = 'ImageError';
  readonly code: ImageErrorCode;
  readonly path: string | undefined;
  readonly reference: string | undefined;
  readonly expected: string | undefined;
  readonly actual: string | undefined;
  readonly url: string | undefined;
  readonly status: number | undefined;
  readonly cleanupErrors: unknown[];

  constructor(code: ImageErrorCode, message: string, details: ImageErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.path = details.path;
    this.reference = details.reference;
    this.expected = details.expected;
    this.actual = details.actual;
    this.url = details.url;
    this.status = details.status;
    this.cleanupErrors = details.cleanupErrors ?? [];
  }
}

/** True for an ImageError (also one from another copy of this package), optionally of one code. */
export function isImageError(error: unknown, code?: ImageErrorCode): error is ImageError {
  return (
    error instanceof Error &&
    error.name === 'ImageError' &&
    (code === undefined || (error as ImageError).code === code)
  );
}

/** The `code` of a Node.js system error (`ENOENT`, `EEXIST`…), if it has one. */
export function errnoOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Wraps a failed file operation, keeping ImageErrors as they are. */
export function ioError(what: string, path: string, cause: unknown): ImageError {
  if (isImageError(cause)) return cause;
  const errno = errnoOf(cause);
  return new ImageError('EIMAGE_IO', `${what} ${path} failed${errno ? ` (${errno})` : ''}`, { path, cause });
}
