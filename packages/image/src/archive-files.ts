/**
 * The files of an image archive being loaded, whether it is a directory (an OCI layout, a
 * docker-archive someone unpacked) or an uncompressed tar read in place: a tar is indexed once
 * (names, offsets, sizes; no byte of it written anywhere) and each member is then read as a
 * range of the tar, so a layer goes from the archive into the store in one pass.
 *
 * Every name is hostile: paths are normalised and must stay inside the archive, and symlinks
 * (docker's legacy format links shared `<id>/layer.tar` files) are followed by hand, only to
 * relative targets inside it, at most 8 deep.
 */
import { closeSync, createReadStream, fstatSync, read, readSync, type Stats } from 'node:fs';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import {
  O_DIRECTORY,
  O_NOFOLLOW,
  O_NONBLOCK,
  O_PATH,
  O_RDONLY,
  openat,
  readlinkat,
  SyscallError,
} from '@box/sys';
import { extract as tarExtract } from 'tar-stream';
import { ImageError } from './errors.js';

/** A regular file of an archive. */
export interface Member {
  /** The name it was asked by (for messages). */
  readonly name: string;
  readonly size: number;
  /** The file itself, when the archive is a directory (the store may move it). */
  readonly path?: string;
  /** Its bytes (manifests and configs: small). */
  read(): Buffer;
  /** Its first bytes. */
  head(n: number): Buffer;
  /** Its bytes, streamed. */
  stream(): Readable;
}

/** The files of an archive, read through a file descriptor the caller opened and closes. */
export interface ArchiveFiles {
  /** The regular file at `name`, or undefined when there is none. */
  find(name: string): Member | undefined;
}

const MAX_ENTRIES = 1_000_000;

function outside(name: string, why: string): ImageError {
  return new ImageError('EIMAGE_UNSAFE_PATH', `the archive path "${name}" ${why}`, { path: name });
}

/**
 * Names no image archive has: deeper or longer ones are refused before any lookup (a member is
 * looked up a component at a time, each prefix for links, so depth costs lookups by its square).
 */
const MAX_NAME_LENGTH = 1024;
const MAX_NAME_DEPTH = 32;

/**
 * `name` made relative and normal; `..` out of the archive, absolute paths, a NUL byte (the kernel
 * would read `..\0` as `..`) and names deeper or longer than any archive's refused.
 */
function normal(name: string): string {
  if (name.includes('\0')) throw outside(JSON.stringify(name).slice(1, -1), 'holds a NUL byte');
  if (name.length > MAX_NAME_LENGTH || name.split('/').length > MAX_NAME_DEPTH)
    throw outside(`${name.slice(0, 64)}…`, `is longer or deeper than any archive's names`);
  const rel = posix.normalize(name).replace(/\/+$/, '');
  if (rel.startsWith('../') || rel === '..' || posix.isAbsolute(rel))
    throw outside(name, 'is outside the archive');
  return rel.replace(/^\.\//, '');
}

/** Follows symlinks among `name`'s components by hand (relative targets inside the archive only). */
function resolve(name: string, linkOf: (prefix: string) => string | undefined, depth = 0): string {
  const rel = normal(name);
  if (depth > 8) throw outside(name, 'goes through too many symlinks');
  const parts = rel.split('/');
  for (let i = 0; i < parts.length; i++) {
    const prefix = parts.slice(0, i + 1).join('/');
    const link = linkOf(prefix);
    if (link === undefined) continue;
    if (posix.isAbsolute(link)) throw outside(name, `is a symlink to ${link}`);
    return resolve(posix.join(posix.dirname(prefix), link, ...parts.slice(i + 1)), linkOf, depth + 1);
  }
  return rel;
}

/** Errors of a lookup that mean there is nothing (or no longer the thing) there to read. */
const GONE = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'ENXIO']);

/**
 * The files of an archive directory, open as `dirFd` (the caller's; `root` names it in messages).
 * The directory may be another user's (`box load -i /home/alice/layout`), who can change it while
 * root reads it: a member swapped, after it was found, for a symlink to a host file, a FIFO (a
 * read that never returns) or a file that goes on growing (a read that never ends). So every
 * member is reached from `dirFd` a component at a time, each opened with O_NOFOLLOW (the archive's
 * own links are followed by hand, above, as names); a read opens the member again without blocking,
 * must find the very file that `find` saw (a regular file, same device and inode), and reads the
 * size `find` saw, not to the end.
 */
export function directoryFiles(dirFd: number, root: string): ArchiveFiles {
  /** `rel` below the directory, no symlink on the way; undefined when there is nothing to open. */
  const openBelow = (rel: string, flags: number): number | undefined => {
    let dir = dirFd;
    try {
      const parts = rel.split('/');
      for (const [i, part] of parts.entries()) {
        const last = i === parts.length - 1;
        const fd = openat(dir, part, last ? flags | O_NOFOLLOW : O_PATH | O_DIRECTORY | O_NOFOLLOW);
        if (dir !== dirFd) closeSync(dir);
        dir = fd;
      }
      return dir;
    } catch (error) {
      if (dir !== dirFd) closeSync(dir);
      // A symlink where a directory was (one made since resolve() looked: ELOOP or ENOTDIR),
      // nothing there, or a socket (ENXIO).
      if (error instanceof SyscallError && GONE.has(error.code)) return undefined;
      const path = join(root, rel);
      throw new ImageError('EIMAGE_CORRUPT', `cannot read ${path}: ${(error as Error).message}`, {
        path,
        cause: error,
      });
    }
  };
  /** What is at `rel` itself (a symlink is not followed), open as O_PATH for `use`. */
  const atPath = <T>(rel: string, use: (fd: number, st: Stats) => T): T | undefined => {
    const fd = openBelow(rel, O_PATH);
    if (fd === undefined) return undefined;
    try {
      return use(fd, fstatSync(fd));
    } finally {
      closeSync(fd);
    }
  };
  const linkOf = (prefix: string): string | undefined =>
    atPath(prefix, (fd, st) => (st.isSymbolicLink() ? readlinkat(fd, '').toString('utf8') : undefined));
  return {
    find(name) {
      const rel = resolve(name, linkOf);
      const st = atPath(rel, (_, st) => st);
      if (!st?.isFile()) return undefined;
      const path = join(root, rel);
      /** The member opened again for reading: the same file, or an error naming it. */
      const open = (): number => {
        const fd = openBelow(rel, O_RDONLY | O_NONBLOCK);
        if (fd === undefined) throw replaced(path);
        const now = fstatSync(fd);
        if (!now.isFile() || now.dev !== st.dev || now.ino !== st.ino) {
          closeSync(fd);
          throw replaced(path);
        }
        return fd;
      };
      const readFirst = (n: number): Buffer => {
        const fd = open();
        try {
          return readRange(fd, path, 0, n);
        } finally {
          closeSync(fd);
        }
      };
      return {
        name,
        size: st.size,
        path,
        read: () => readFirst(st.size),
        head: (n) => readFirst(Math.min(n, st.size)),
        // Opened when first read, and closed when read to the end or destroyed: a stream made and
        // never read holds no fd.
        stream: () => Readable.from(chunks(open, path, st.size), { objectMode: false }),
      };
    },
  };
}

function replaced(path: string): ImageError {
  return new ImageError('EIMAGE_CORRUPT', `${path} was replaced while the archive was read`, { path });
}

const readAt = promisify(read);

/** The first `size` bytes of the file `open` opens, a chunk at a time. */
async function* chunks(open: () => number, path: string, size: number): AsyncGenerator<Buffer> {
  if (size === 0) return;
  const fd = open();
  try {
    for (let position = 0; position < size; ) {
      const buf = Buffer.allocUnsafe(Math.min(1 << 20, size - position));
      const { bytesRead } = await readAt(fd, buf, 0, buf.length, position);
      if (bytesRead === 0) throw new ImageError('EIMAGE_CORRUPT', `${path} ends early`, { path });
      position += bytesRead;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    closeSync(fd);
  }
}

interface TarEntry {
  type: string;
  offset: number;
  size: number;
  linkname: string | null;
}

/**
 * The files of an uncompressed tar open as `fd` (the caller's; `path` names it in messages), read
 * in place. The index is one pass of tar-stream over the tar (its payloads skipped, never stored);
 * a later entry of the same name replaces an earlier one. Every read is of that open file, even if
 * its path is replaced.
 */
export async function indexTarFiles(fd: number, path: string): Promise<ArchiveFiles> {
  const entries = new Map<string, TarEntry>();
  const extract = tarExtract();
  const done = new Promise<void>((resolveDone, reject) => {
    extract.on('entry', (header, stream, next) => {
      try {
        if (entries.size >= MAX_ENTRIES)
          throw new ImageError('EIMAGE_CORRUPT', 'the archive has too many entries');
        // As the tar would be unpacked: a leading `/` dropped.
        const rel = normal(header.name.replace(/^\/+/, ''));
        if (rel !== '' && rel !== '.') {
          entries.set(rel, {
            type: header.type ?? 'unknown',
            offset: (header as unknown as { byteOffset: number }).byteOffset,
            size: header.size ?? 0,
            linkname: header.linkname ?? null,
          });
        }
      } catch (error) {
        stream.on('error', () => {});
        stream.resume();
        next(error as Error);
        return;
      }
      stream.on('end', () => next());
      stream.resume();
    });
    extract.on('finish', resolveDone);
    extract.on('error', reject);
  });
  createReadStream('', { fd, autoClose: false, start: 0, highWaterMark: 1 << 20 })
    .on('error', (error) => extract.destroy(error))
    .pipe(extract as unknown as NodeJS.WritableStream);
  await done;
  const linkOf = (prefix: string) => {
    const entry = entries.get(prefix);
    return entry?.type === 'symlink' ? (entry.linkname ?? '') : undefined;
  };
  return {
    find(name) {
      let entry = entries.get(resolve(name, linkOf));
      // A hard link member reads as the file it links to (one level, as tar writes them).
      if (entry?.type === 'link' && entry.linkname !== null)
        entry = entries.get(resolve(entry.linkname.replace(/^\/+/, ''), linkOf));
      if (entry === undefined || (entry.type !== 'file' && entry.type !== 'contiguous-file'))
        return undefined;
      const { offset, size } = entry;
      return {
        name,
        size,
        read: () => readRange(fd, path, offset, size),
        head: (n) => readRange(fd, path, offset, Math.min(n, size)),
        stream: () =>
          size === 0
            ? Readable.from([])
            : createReadStream('', {
                fd,
                autoClose: false,
                start: offset,
                end: offset + size - 1,
                highWaterMark: 1 << 20,
              }),
      };
    },
  };
}

function readRange(fd: number, path: string, offset: number, size: number): Buffer {
  const out = Buffer.alloc(size);
  let done = 0;
  while (done < size) {
    const n = readSync(fd, out, done, size - done, offset + done);
    if (n === 0) throw new ImageError('EIMAGE_CORRUPT', `the archive ${path} ends early`, { path });
    done += n;
  }
  return out;
}
