/**
 * Tar-split: an uncompressed layer kept as its unpacked files plus the tar's other bytes, so the
 * store does not hold every imported or committed layer twice (the blob and the files).
 *
 * While a layer is unpacked, the recorder sees the uncompressed tar and, from the unpacker, where
 * each regular file's data lies in it (tar-stream's payload offset and size). It writes
 * everything else — headers, PAX and GNU long-name records, padding, the end-of-archive blocks
 * and anything after them — as raw records, and for each file's data a reference to the file
 * (`diff/<path>`, or `tar-split.keep/<entry>` when a later entry removed or replaced it: the
 * unpacker hard-links such a file there before removing it, so its bytes stay). `rebuildTar`
 * streams the same bytes back and checks them against the layer's diffID: `save`, `push` and
 * `image inspect` give the digests they gave when the blob was kept.
 *
 * Threat model: the layer's files are the image's, but once unpacked they are box's own and
 * never written again (overlay mounts them read-only as lower layers; the store is closed to
 * other users). A reference is a path inside the layer that the unpacker itself created through
 * real directories; it is opened with O_NOFOLLOW and must be a regular file of the recorded size,
 * and the rebuilt stream is refused (EIMAGE_CORRUPT) unless it hashes to the diffID — so a
 * layer changed behind box's back is never sent as the original.
 *
 * Format (`tar-split.gz`): gzip members of records, in tar order:
 *   'R' u32le length, bytes                         raw tar bytes
 *   'Z' f64le count                                  raw bytes that are all zero
 *   'F' u32le entry, f64le size, u32le length, path  a file's data, from `diff/<path>`
 */
import {
  closeSync,
  createReadStream,
  constants as fsConstants,
  fstatSync,
  openSync,
  readSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip, gzipSync } from 'node:zlib';
import { Sha256 } from './digest.js';
import { ImageError } from './errors.js';

/** The file beside `diff/` that holds the records. */
export const SPLIT_FILE = 'tar-split.gz';
/** Where files that a later entry removed are kept (hard links, by entry number). */
export const KEEP_DIR = 'tar-split.keep';

const RAW = 0x52; // 'R'
const FILE = 0x46; // 'F'
const ZEROS = 0x5a; // 'Z'
const RAW_RECORD_MAX = 1 << 16;
const BATCH = 1 << 20;
const BLOCK = 512;
/**
 * Bytes not yet known to be raw or a file's data are held in memory until the parser says
 * which; a real tar holds a header or two there. More than this is a hostile layer.
 */
export const MAX_PENDING = 64 << 20;
const ZERO = Buffer.alloc(1 << 20);

/** The padding after `size` bytes of data, to the next 512-byte block. */
function padding(size: number): number {
  const rest = size % BLOCK;
  return rest === 0 ? 0 : BLOCK - rest;
}

function isZero(bytes: Buffer): boolean {
  for (let at = 0; at < bytes.length; at += ZERO.length) {
    const piece = bytes.subarray(at, at + ZERO.length);
    if (!piece.equals(ZERO.subarray(0, piece.length))) return false;
  }
  return true;
}

/**
 * Splits a tar as it streams: `write` gets every uncompressed byte (before the tar parser), and
 * the unpacker tells it, for each entry the parser reads, where a regular file's data lies
 * (`file`) or what the parser skips (`skipped`). Everything else is raw. Between entries it
 * reads the blocks where the parser looks for the next header itself: all-zero blocks, which
 * the parser passes over without an entry (runs of them end many tars), are settled as they
 * arrive, so that no run of them is held in memory.
 */
export class SplitRecorder {
  #received = 0;
  /** Bytes before `#decided` are decided: raw (`#decidedRaw`) or dropped (a file's data). */
  #decided = 0;
  #decidedRaw = true;
  /** Where the parser reads its next header, when known (after an entry's data). */
  #nextHeader: number | undefined = 0;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #raw: Buffer[] = [];
  #rawBytes = 0;
  #zeros = 0;
  #batch: Buffer[] = [];
  #batchBytes = 0;
  #fd: number;
  files = 0;

  constructor(path: string) {
    this.#fd = openSync(path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
  }

  /** Every byte of the uncompressed tar, in order. Throws EIMAGE_CORRUPT past MAX_PENDING. */
  write(chunk: Buffer): void {
    const start = this.#received;
    this.#received += chunk.length;
    // Bytes of a region decided before they arrived: a file's data (dropped) or an entry's
    // data that the parser skips (raw).
    if (start < this.#decided) {
      const n = Math.min(chunk.length, this.#decided - start);
      if (this.#decidedRaw) this.#addRaw(chunk.subarray(0, n));
      chunk = chunk.subarray(n);
    }
    if (chunk.length === 0) return;
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    this.#settleEmptyBlocks();
    if (this.#pendingBytes > MAX_PENDING) {
      throw new ImageError(
        'EIMAGE_CORRUPT',
        `the layer has more than ${MAX_PENDING >> 20} MiB between two of its entries`,
      );
    }
  }

  /**
   * A regular file's data, `size` bytes from stream offset `offset` (its header is before it, so
   * every byte up to `offset` has been written here already), now in `diff/<path>`.
   */
  file(entry: number, offset: number, size: number, path: string): void {
    this.#rawUntil(offset);
    this.#flush();
    const name = Buffer.from(path, 'utf8');
    const record = Buffer.alloc(17 + name.length);
    record[0] = FILE;
    record.writeUInt32LE(entry, 1);
    record.writeDoubleLE(size, 5);
    record.writeUInt32LE(name.length, 13);
    name.copy(record, 17);
    this.#out(record);
    this.#take(Math.min(size, this.#pendingBytes)); // the part that arrived already
    this.#decided = offset + size;
    this.#decidedRaw = false;
    this.#nextHeader = offset + size + padding(size);
    this.files++;
  }

  /**
   * An entry whose header ends at `offset` and whose data, if the parser reads any, ends at
   * `end` (`offset` for a directory, whose data the parser never reads): all of it is raw.
   */
  skipped(offset: number, end: number): void {
    this.#rawUntil(end);
    this.#nextHeader = end + padding(end - offset);
    this.#settleEmptyBlocks();
  }

  /** The tar ended: what is left (end-of-archive blocks, trailing bytes) is raw. Closes the file. */
  finish(): void {
    try {
      this.#rawUntil(this.#received);
      this.#flush();
      this.#flushBatch();
    } finally {
      this.close();
    }
  }

  /** Closes the file without finishing it (the unpack failed; the caller removes it). */
  close(): void {
    if (this.#fd < 0) return;
    closeSync(this.#fd);
    this.#fd = -1;
  }

  /**
   * At the next header's place, blocks of zeros are what the parser skips without an entry
   * (its test: every byte but the checksum field's is 0): raw. A block that is not one is a
   * header, settled when the parser reports its entry.
   */
  #settleEmptyBlocks(): void {
    while (this.#nextHeader !== undefined && this.#received >= this.#nextHeader + BLOCK) {
      if (this.#decided > this.#nextHeader) return; // inside data still arriving
      this.#rawUntil(this.#nextHeader);
      const block = Buffer.concat(this.#peek(BLOCK));
      const empty =
        block.subarray(0, 148).equals(ZERO.subarray(0, 148)) &&
        block.subarray(156).equals(ZERO.subarray(0, BLOCK - 156));
      if (!empty) {
        this.#nextHeader = undefined;
        return;
      }
      this.#rawUntil(this.#nextHeader + BLOCK);
      this.#nextHeader += BLOCK;
    }
  }

  #rawUntil(offset: number): void {
    const n = offset - this.#decided;
    if (n <= 0) return;
    for (const piece of this.#take(Math.min(n, this.#pendingBytes))) this.#addRaw(piece);
    this.#decided = offset;
    this.#decidedRaw = true;
  }

  /** Raw bytes; runs of zeros (padding, empty blocks, a zero-filled payload) kept as a count. */
  #addRaw(piece: Buffer): void {
    if (isZero(piece)) {
      if (this.#rawBytes > 0) this.#flushRaw();
      this.#zeros += piece.length;
      return;
    }
    if (this.#zeros > 0) this.#flushZeros();
    this.#raw.push(piece);
    this.#rawBytes += piece.length;
    if (this.#rawBytes >= RAW_RECORD_MAX) this.#flushRaw();
  }

  /** The first `n` pending bytes (or fewer), left pending. */
  #peek(n: number): Buffer[] {
    const out: Buffer[] = [];
    for (const chunk of this.#pending) {
      if (n <= 0) break;
      out.push(chunk.subarray(0, n));
      n -= Math.min(n, chunk.length);
    }
    return out;
  }

  /** Removes `n` bytes from the front of the pending ones and returns them. */
  #take(n: number): Buffer[] {
    const out: Buffer[] = [];
    while (n > 0) {
      const head = this.#pending[0]!;
      if (head.length <= n) {
        out.push(head);
        this.#pending.shift();
        n -= head.length;
        this.#pendingBytes -= head.length;
      } else {
        out.push(head.subarray(0, n));
        this.#pending[0] = head.subarray(n);
        this.#pendingBytes -= n;
        n = 0;
      }
    }
    return out;
  }

  #flush(): void {
    this.#flushRaw();
    this.#flushZeros();
  }

  #flushZeros(): void {
    if (this.#zeros === 0) return;
    const record = Buffer.alloc(9);
    record[0] = ZEROS;
    record.writeDoubleLE(this.#zeros, 1);
    this.#out(record);
    this.#zeros = 0;
  }

  #flushRaw(): void {
    if (this.#rawBytes === 0) return;
    const head = Buffer.alloc(5);
    head[0] = RAW;
    head.writeUInt32LE(this.#rawBytes, 1);
    this.#out(head);
    for (const piece of this.#raw) this.#out(piece);
    this.#raw = [];
    this.#rawBytes = 0;
  }

  #out(bytes: Buffer): void {
    this.#batch.push(bytes);
    this.#batchBytes += bytes.length;
    if (this.#batchBytes >= BATCH) this.#flushBatch();
  }

  /** One gzip member per batch (headers and padding shrink ~10×); gunzip reads members in a row. */
  #flushBatch(): void {
    if (this.#batchBytes === 0) return;
    const member = gzipSync(Buffer.concat(this.#batch, this.#batchBytes), { level: 1 });
    let offset = 0;
    while (offset < member.length) offset += writeSync(this.#fd, member, offset, member.length - offset);
    this.#batch = [];
    this.#batchBytes = 0;
  }
}

function corrupt(layerDir: string, why: string): ImageError {
  return new ImageError('EIMAGE_CORRUPT', `layer ${layerDir} cannot be rebuilt as a tar: ${why}`, {
    path: layerDir,
  });
}

/** The records of a split file, parsed as they are decompressed. */
async function* records(
  path: string,
  layerDir: string,
): AsyncGenerator<{ raw: Buffer } | { zeros: number } | { entry: number; size: number; path: string }> {
  let buffer: Buffer = Buffer.alloc(0);
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 16 }).pipe(
    createGunzip({ chunkSize: 1 << 18 }),
  )) {
    buffer = buffer.length === 0 ? (chunk as Buffer) : Buffer.concat([buffer, chunk as Buffer]);
    for (;;) {
      if (buffer.length < 5) break;
      if (buffer[0] === RAW) {
        const length = buffer.readUInt32LE(1);
        if (buffer.length < 5 + length) break;
        yield { raw: buffer.subarray(5, 5 + length) };
        buffer = buffer.subarray(5 + length);
      } else if (buffer[0] === ZEROS) {
        if (buffer.length < 9) break;
        yield { zeros: buffer.readDoubleLE(1) };
        buffer = buffer.subarray(9);
      } else if (buffer[0] === FILE) {
        if (buffer.length < 17) break;
        const length = buffer.readUInt32LE(13);
        if (buffer.length < 17 + length) break;
        yield {
          entry: buffer.readUInt32LE(1),
          size: buffer.readDoubleLE(5),
          path: buffer.subarray(17, 17 + length).toString('utf8'),
        };
        buffer = buffer.subarray(17 + length);
      } else {
        throw corrupt(layerDir, `${SPLIT_FILE} has an unknown record`);
      }
    }
  }
  if (buffer.length > 0) throw corrupt(layerDir, `${SPLIT_FILE} ends in the middle of a record`);
}

/** Reads `size` bytes of a layer's file, which must still be the regular file recorded. */
function* fileData(layerDir: string, entry: number, size: number, path: string): Generator<Buffer> {
  const kept = join(layerDir, KEEP_DIR, String(entry));
  let fd: number;
  try {
    fd = openSync(kept, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  } catch {
    try {
      fd = openSync(join(layerDir, 'diff', path), fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    } catch (error) {
      throw corrupt(layerDir, `its file ${path} cannot be opened (${(error as NodeJS.ErrnoException).code})`);
    }
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size !== size) throw corrupt(layerDir, `its file ${path} was changed`);
    let left = size;
    while (left > 0) {
      const chunk = Buffer.allocUnsafe(Math.min(left, 1 << 20));
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) throw corrupt(layerDir, `its file ${path} was changed`);
      left -= n;
      yield n === chunk.length ? chunk : chunk.subarray(0, n);
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * The layer's tar, byte for byte, from `layerDir` (with `diff/` and the split file). The stream
 * fails with EIMAGE_CORRUPT when what it read does not hash to `diffID`.
 */
export function rebuildTar(layerDir: string, diffID: string): Readable {
  async function* generate(): AsyncGenerator<Buffer> {
    const hash = new Sha256();
    for await (const record of records(join(layerDir, SPLIT_FILE), layerDir)) {
      if ('raw' in record) {
        hash.update(record.raw);
        yield record.raw;
        continue;
      }
      if ('zeros' in record) {
        for (let left = record.zeros; left > 0; left -= ZERO.length) {
          const zeros = ZERO.subarray(0, Math.min(left, ZERO.length));
          hash.update(zeros);
          yield Buffer.from(zeros); // a copy: consumers may keep or change what they get
        }
        continue;
      }
      for (const chunk of fileData(layerDir, record.entry, record.size, record.path)) {
        hash.update(chunk);
        yield chunk;
      }
    }
    const digest = hash.digest();
    if (digest !== diffID) throw corrupt(layerDir, `the rebuilt tar has digest ${digest}, not ${diffID}`);
  }
  return Readable.from(generate(), { objectMode: false, highWaterMark: 1 << 20 });
}
