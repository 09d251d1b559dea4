/**
 * Downloading one blob into a partial file of the store's staging area, resumable.
 *
 * The partial file is named by the blob's (validated) digest, `tmp/pull-<hex>.partial`, so a pull
 * that was interrupted (registry gone, process killed) picks up where it stopped with an HTTP
 * Range request. The file is flock(2)ed while in use, so two pulls of the same blob never write it
 * at once. Bytes already there are hashed again before resuming: the final digest always covers
 * every byte on disk.
 *
 * Threat model: the registry may send more than the descriptor's size (refused as soon as it
 * does), other bytes than the digest (refused and the partial file dropped, so the next pull starts
 * afresh), or stall (the transport's stall timeout). Nothing is trusted until the digest matched.
 */
import { createHash, type Hash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fstatSync,
  fsync,
  ftruncateSync,
  openSync,
  readSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { digestHex } from '../digest.js';
import { ImageError } from '../errors.js';
import type { Descriptor } from '../manifest.js';
import { backoffMs, type RegistryClient, sleep } from './client.js';
import { isTransient, markTransient } from './transport.js';

/** The partial file a blob downloads into: only built from a validated digest. */
export function partialPath(tmpDir: string, digest: string): string {
  return join(tmpDir, `pull-${digestHex(digest)}.partial`);
}

export interface DownloadedBlob {
  path: string;
  /** Bytes that were already on disk when the download started (resumed from). */
  resumedFrom: number;
  /** Releases the file's lock (after it was moved into the store, or on failure). */
  release(): void;
}

export interface DownloadOptions {
  scopes: readonly string[];
  signal?: AbortSignal;
  /** `downloading` progress with bytes on disk so far, `retrying` before another attempt. */
  onProgress?: (status: 'downloading' | 'verifying' | 'retrying', current: number, total: number) => void;
  /** Attempts without progress before giving up (default 4). */
  attempts?: number;
}

const READ_CHUNK = 1 << 20;
const PROGRESS_STEP = 256 * 1024;

async function lockFile(path: string, signal?: AbortSignal): Promise<number> {
  const { tryLock } = await import('@box/sys');
  for (;;) {
    const fd = openSync(path, 'a+', 0o600);
    let keep = false;
    try {
      while (!tryLock(fd, path)) await sleep(100, signal); // another pull has this blob
      // The other pull may have finished and moved the file away while we waited: use the path's file.
      const here = existsSync(path) ? statSync(path).ino : -1;
      if (here === fstatSync(fd).ino) {
        keep = true;
        return fd;
      }
    } finally {
      if (!keep) closeSync(fd);
    }
  }
}

function rehash(fd: number, size: number): Hash {
  const hash = createHash('sha256');
  const buffer = Buffer.alloc(READ_CHUNK);
  let position = 0;
  while (position < size) {
    const n = readSync(fd, buffer, 0, Math.min(READ_CHUNK, size - position), position);
    if (n === 0) break;
    hash.update(buffer.subarray(0, n));
    position += n;
  }
  return hash;
}

/** Downloads `descriptor` from `/v2/<path>/blobs/<digest>` into its partial file in `tmpDir`. */
export async function downloadBlob(
  client: RegistryClient,
  path: string,
  descriptor: Descriptor,
  tmpDir: string,
  options: DownloadOptions,
): Promise<DownloadedBlob> {
  const { digest, size } = descriptor;
  const file = partialPath(tmpDir, digest);
  const fd = await lockFile(file, options.signal);
  const release = () => closeSync(fd);
  try {
    let offset = fstatSync(fd).size;
    if (offset > size) {
      ftruncateSync(fd, 0);
      offset = 0;
    }
    let hash = rehash(fd, offset);
    const resumedFrom = offset;
    const url = `/v2/${path}/blobs/${digest}`;
    const restart = () => {
      ftruncateSync(fd, 0);
      offset = 0;
      hash = createHash('sha256');
    };
    let failures = 0;
    const maxFailures = options.attempts ?? 4;
    let lastReport = -1;
    const report = (force = false) => {
      if (force || offset - lastReport >= PROGRESS_STEP || offset === size) {
        lastReport = offset;
        options.onProgress?.('downloading', offset, size);
      }
    };
    while (offset < size) {
      const before = offset;
      try {
        const res = await client.request('GET', url, {
          headers: offset > 0 ? { Range: `bytes=${offset}-` } : {},
          scopes: options.scopes,
          attempts: 1, // retried here, with the Range moved on
        });
        if (res.status === 206) {
          const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
          if (!range || Number(range[1]) !== offset) {
            await res.discard();
            throw new ImageError(
              'EIMAGE_REGISTRY',
              `the registry answered a Range request for ${digest} with another range (${res.headers.get('content-range')})`,
              {
                url: res.url,
                status: 206,
              },
            );
          }
        } else if (res.status === 200) {
          if (offset > 0) restart(); // the registry ignored the Range: take the whole blob again
        } else {
          throw await client.unexpected(res, `blob ${digest}`);
        }
        report(true);
        for await (const chunk of res.chunks(
          size - offset,
          `blob ${digest} (${size} bytes in its descriptor)`,
        )) {
          let written = 0;
          while (written < chunk.length)
            written += writeSync(fd, chunk, written, chunk.length - written, offset + written);
          hash.update(chunk);
          offset += chunk.length;
          report();
        }
        if (offset < size) {
          throw markTransient(
            new ImageError(
              'EIMAGE_REGISTRY',
              `the registry ended blob ${digest} after ${offset} of ${size} bytes`,
              { url: res.url },
            ),
          );
        }
      } catch (error) {
        if ((error as ImageError).code === 'EIMAGE_TOO_LARGE') restart();
        if (offset > before) failures = 0; // progress was made: this was a hiccup, not a dead registry
        failures++;
        if (!isTransient(error) || failures >= maxFailures || options.signal?.aborted) throw error;
        options.onProgress?.('retrying', offset, size);
        await sleep(backoffMs(failures - 1), options.signal);
      }
    }
    options.onProgress?.('verifying', offset, size);
    // On the thread pool: a synchronous fsync of a large blob would hold up every other
    // download and unpack of the pull for as long as the disk takes.
    await new Promise<void>((resolve, reject) => fsync(fd, (error) => (error ? reject(error) : resolve())));
    const actual = `sha256:${hash.digest('hex')}`;
    if (actual !== digest) {
      // Corrupt bytes must not be resumed from: start afresh next time.
      ftruncateSync(fd, 0);
      throw new ImageError(
        'EIMAGE_DIGEST',
        `blob ${digest} from ${client.host}/${path} has digest ${actual}; refused`,
        {
          expected: digest,
          actual,
          url: client.url(url),
        },
      );
    }
    return { path: file, resumedFrom, release };
  } catch (error) {
    // Keep bytes worth resuming from; an empty partial file is only clutter.
    if (fstatSync(fd).size === 0) rmSync(file, { force: true });
    release();
    throw error;
  }
}
