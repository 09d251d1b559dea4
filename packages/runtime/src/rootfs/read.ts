/**
 * Reading a small file of a container or an image layer (its /etc/passwd, say) from the
 * host, as root. The file is the image's or the container's: hostile. So it is opened
 * inside `root` with openat2 RESOLVE_IN_ROOT (no symlink or ".." leads out, and nothing can
 * swap a path component between a check and the open), read only if it is a regular file
 * on an ordinary file system (a FIFO would block box forever, a device node would be opened
 * as host root, /proc/kmsg would be drained), and only up to a limit.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import {
  AT_FDCWD,
  O_DIRECTORY,
  O_PATH,
  openat,
  openat2,
  RESOLVE_IN_ROOT,
  RESOLVE_NO_MAGICLINKS,
  SyscallError,
} from '@box/sys';
import { RuntimeError } from '../errors.js';
import { kernelFileSystem } from './kernel-fs.js';

export type RootFile = { kind: 'file'; data: Buffer } | { kind: 'whiteout' } | { kind: 'other' };

const LIMIT = 1 << 20;

/**
 * The file at `path` inside `root` (a directory on the host): its bytes; 'whiteout' for an
 * overlayfs whiteout (a layer hiding the path); 'other' for anything that is not a regular
 * file (directory, FIFO, device, socket, a kernel file system's file); undefined when there
 * is none. Throws RuntimeError EFILETOOLARGE past `maxBytes`.
 */
/**
 * Opens the file behind an O_PATH fd for reading: through /proc/self/fd, which reaches
 * exactly the inode the fd pins. Non-blocking, so a lease its owner holds on it (a
 * container process's F_SETLEASE) makes this fail at once instead of waiting out the
 * kernel's lease-break time; regular files read as usual otherwise.
 */
export function reopenForReading(fd: number, what: string): number {
  try {
    return openSync(`/proc/self/fd/${fd}`, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    if (
      (error as NodeJS.ErrnoException).code === 'EAGAIN' ||
      (error as NodeJS.ErrnoException).code === 'EWOULDBLOCK'
    ) {
      throw new RuntimeError('ELEASED', `${what} is held by a lease in the container; not waiting for it`, {
        cause: error,
      });
    }
    throw error;
  }
}

export function readFileInRoot(root: string, path: string, maxBytes = LIMIT): RootFile | undefined {
  let rootfd: number;
  try {
    rootfd = openat(AT_FDCWD, root, O_PATH | O_DIRECTORY);
  } catch {
    return undefined;
  }
  try {
    let fd: number;
    try {
      fd = openat2(rootfd, path, { flags: O_PATH, resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS });
    } catch (error) {
      if (error instanceof SyscallError && ['ENOENT', 'ENOTDIR', 'ELOOP', 'EXDEV'].includes(error.code ?? ''))
        return undefined;
      throw error;
    }
    try {
      const st = fstatSync(fd);
      if (st.isCharacterDevice() && st.rdev === 0) return { kind: 'whiteout' };
      if (!st.isFile() || kernelFileSystem(fd) !== undefined) return { kind: 'other' };
      const input = reopenForReading(fd, path);
      try {
        const buf = Buffer.allocUnsafe(maxBytes + 1);
        let size = 0;
        for (;;) {
          const n = readSync(input, buf, size, buf.length - size, null);
          if (n === 0) break;
          size += n;
          if (size > maxBytes) {
            throw new RuntimeError(
              'EFILETOOLARGE',
              `${path} is larger than ${maxBytes} bytes; not reading it`,
            );
          }
        }
        return { kind: 'file', data: buf.subarray(0, size) };
      } finally {
        closeSync(input);
      }
    } finally {
      closeSync(fd);
    }
  } finally {
    closeSync(rootfd);
  }
}
