/** The engine's one atomic write. */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/**
 * Writes a file only its owner (root) may read (0600), atomically: a temp file in the same
 * directory, fsync (unless `durable: false`), rename. An older file with a looser mode is
 * replaced, never rewritten in place. ENOENT (the directory is gone) is the caller's to handle.
 */
export function writePrivateFile(path: string, data: string, options: { durable?: boolean } = {}): void {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}`);
  const fd = openSync(temp, 'w', 0o600);
  try {
    writeSync(fd, data);
    if (options.durable !== false) fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(temp, { force: true });
    throw error;
  }
  closeSync(fd);
  renameSync(temp, path);
}
