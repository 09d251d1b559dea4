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

let writes = 0;

/**
 * Writes `data` to `path` through a temporary file in the same directory, then a rename. The
 * rename replaces whatever `path` is (a symlink planted there is replaced, never followed), and
 * the temporary file is opened O_EXCL|O_NOFOLLOW under a name of this process and write: nothing
 * someone put in its place is opened. A temporary file that a failed write leaves is removed.
 */
export function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: AtomicWriteOptions = {},
): void {
  const { mode = 0o600, fsync = true, syncDir = false } = options;
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${process.pid}-${writes++}.tmp`);
  const fd = openTemp(temp, mode);
  try {
    fchmodSync(fd, mode);
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    let offset = 0;
    while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset);
    if (fsync) fsyncSync(fd);
    closeSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(temp, { force: true });
    throw error;
  }
  try {
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

/** The temporary file, new. One there already was left by a dead process of this pid: removed. */
function openTemp(temp: string, mode: number): number {
  try {
    return openSync(temp, CREATE, mode);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  rmSync(temp, { force: true });
  return openSync(temp, CREATE, mode);
}
