import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { ImageError } from './errors.js';
import { isDigest } from './reference.js';

/** `sha256:<hex>` of a buffer or string. */
export function sha256(data: string | Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** The hex part of a `sha256:<hex>` digest; throws `EIMAGE_DIGEST` for anything else. */
export function digestHex(digest: string): string {
  if (!isDigest(digest)) {
    throw new ImageError('EIMAGE_DIGEST', `"${digest}" is not a sha256 digest`, { actual: digest });
  }
  return digest.slice('sha256:'.length);
}

/** The error for content whose hash is not the one announced. */
export function digestMismatch(what: string, expected: string, actual: string, path?: string): ImageError {
  return new ImageError('EIMAGE_DIGEST', `${what} has digest ${actual}, expected ${expected}`, {
    expected,
    actual,
    path,
  });
}

/**
 * A pass-through stream that hashes (sha256) and counts what flows through it.
 * Read `digest` and `size` after it has ended, or `verify()` against an expected digest.
 */
export class DigestStream extends Transform {
  #hash: Hash = createHash('sha256');
  #digest: string | undefined;
  size = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#hash.update(chunk);
    this.size += chunk.length;
    callback(null, chunk);
  }

  /** The digest of everything that passed; only valid after the stream ended. */
  get digest(): string {
    this.#digest ??= `sha256:${this.#hash.digest('hex')}`;
    return this.#digest;
  }

  /** Throws `EIMAGE_DIGEST` when the content did not hash to `expected` (when given). */
  verify(what: string, expected: string | undefined, path?: string): void {
    if (expected !== undefined && this.digest !== expected)
      throw digestMismatch(what, expected, this.digest, path);
  }
}

/** A streaming sha256 that is updated by hand (for hot paths where a Transform costs too much). */
export class Sha256 {
  #hash: Hash = createHash('sha256');
  size = 0;
  update(chunk: Uint8Array): void {
    this.#hash.update(chunk);
    this.size += chunk.length;
  }
  digest(): string {
    return `sha256:${this.#hash.digest('hex')}`;
  }
}

/**
 * The OCI chain IDs of a list of diffIDs, bottom layer first:
 * ChainID(L0) = DiffID(L0), ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)).
 */
export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const diffId of diffIds) {
    digestHex(diffId);
    const parent = out[out.length - 1];
    out.push(parent === undefined ? diffId : sha256(`${parent} ${diffId}`));
  }
  return out;
}
