import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { Worker } from 'node:worker_threads';
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

/** The worker of `WorkerDigestStream`: sha256 of the chunks it is sent, each acknowledged. */
const HASH_WORKER = `
const { parentPort } = require('node:worker_threads');
const hash = require('node:crypto').createHash('sha256');
parentPort.on('message', (message) => {
  if (message === 'end') return parentPort.postMessage({ digest: hash.digest('hex') });
  hash.update(new Uint8Array(message));
  parentPort.postMessage({ done: message.byteLength });
});
`;

/** Bytes sent to the worker and not yet hashed, past which the stream waits for it. */
const WORKER_BACKLOG = 32 << 20;

/**
 * A DigestStream whose hashing runs on a worker thread, for big layers: sha256 is most of an
 * unpack's CPU on the event loop, which also parses the tar and writes the files, and this
 * machine's second CPU is otherwise idle then. Chunks are copied to the worker (a copy costs a
 * tenth of hashing them); past WORKER_BACKLOG bytes in flight the stream waits, so memory stays
 * bounded whatever the input. `digest` is known once the stream has flushed.
 */
export class WorkerDigestStream extends Transform {
  #worker = new Worker(HASH_WORKER, { eval: true });
  #inFlight = 0;
  #resume: (() => void) | undefined;
  #onDigest: ((hex: string) => void) | undefined;
  #failure: Error | undefined;
  #digest: string | undefined;
  size = 0;

  constructor() {
    super({ highWaterMark: 1 << 20 });
    this.#worker.unref();
    this.#worker.on('message', (message: { done?: number; digest?: string }) => {
      if (message.done !== undefined) {
        this.#inFlight -= message.done;
        if (this.#inFlight <= WORKER_BACKLOG / 2 && this.#resume) {
          const resume = this.#resume;
          this.#resume = undefined;
          resume();
        }
      } else if (message.digest !== undefined) this.#onDigest?.(message.digest);
    });
    this.#worker.on('error', (error) => {
      this.#failure = error;
      this.destroy(error);
    });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const copy = new Uint8Array(chunk); // its own ArrayBuffer, moved to the worker
    this.size += chunk.length;
    this.#inFlight += chunk.length;
    this.#worker.postMessage(copy.buffer, [copy.buffer]);
    if (this.#inFlight > WORKER_BACKLOG) this.#resume = () => callback(null, chunk);
    else callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.#failure) {
      callback(this.#failure);
      return;
    }
    this.#onDigest = (hex) => {
      this.#digest = `sha256:${hex}`;
      void this.#worker.terminate();
      callback();
    };
    this.#worker.postMessage('end');
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    void this.#worker.terminate();
    callback(error);
  }

  /** The digest of everything that passed; only once the stream has flushed. */
  get digest(): string {
    if (this.#digest === undefined) throw new Error('the digest of a stream that has not ended');
    return this.#digest;
  }

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
