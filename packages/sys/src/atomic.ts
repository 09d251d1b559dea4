/**
 * The one atomic file write of box's packages: state records, image indexes, address pools,
 * credentials. A reader sees the old file or the new one, whole, never a part.
 */
import {
  closeSync,
  constants,
  fchmodSync,
  fsyncSync,
  openSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';

export interface AtomicWriteOptions {
  /** The file's mode, set with fchmod so that the umask changes nothing (default 0600). */
  mode?: number;
  /**
   * fsync the data before the rename (default true): after a power loss the path then holds the
   * old file or the new one. Without it, the new file may come back empty: only for files nobody
   * needs after a crash.
   */
  fsync?: boolean;
  /** fsync the directory after the rename (default false), so that the rename itself is kept. */
  syncDir?: boolean;
}

/**
 * Writes `data` to `path` through a temporary file in the same directory, then a rename. The
 * rename replaces whatever `path` is (a symlink planted there is replaced, never followed), and
 * the temporary file is a new one (O_EXCL|O_NOFOLLOW): nothing someone put in its place is opened
 * or removed. A temporary file that a failed write leaves is removed.
 */
export function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: AtomicWriteOptions = {},
): void {
  const { mode = 0o600, fsync = true, syncDir = false } = options;
  const dir = dirname(path);
  const { fd, temp } = openTemp(dir, basename(path), mode);
  try {
    try {
      fchmodSync(fd, mode);
      const bytes = typeof data === 'string' ? Buffer.from(data) : data;
      let offset = 0;
      while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset);
      if (fsync) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
  if (!syncDir) return;
  const dirFd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

const CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/**
 * A new temporary file next to the target. Its name has this process's pid and a random part: a
 * pid and a counter would not do, as worker threads share the pid and each has its own counter.
 */
function openTemp(dir: string, name: string, mode: number): { fd: number; temp: string } {
  for (let attempt = 0; ; attempt++) {
    const temp = join(dir, `.${name}.${process.pid}-${Math.random().toString(36).slice(2, 10)}.tmp`);
    try {
      return { fd: openSync(temp, CREATE, mode), temp };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt === 3) throw error;
    }
  }
}
