import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CgroupError, errnoOf } from './errors.js';
import { type CgroupFs, ioError } from './fs.js';

export interface RemoveOptions {
  /** Tries in all (default 12). */
  attempts?: number;
  /** The first pause in ms; it doubles after each try, up to 500 ms (default 10). */
  delayMs?: number;
}

/** Which directory of the tree failed, and how. */
class RemoveFailure {
  constructor(
    readonly op: string,
    readonly dir: string,
    readonly error: unknown,
  ) {}
}

async function removeOnce(fs: CgroupFs, dir: string): Promise<void> {
  // rmdir first: a cgroup without child cgroups (a container's, nearly always) goes in one call.
  // The kernel refuses one that still has child cgroups or tasks (EBUSY), and only then are its
  // children listed.
  try {
    await fs.rmdir(dir);
    return;
  } catch (error) {
    const errno = errnoOf(error);
    if (errno === 'ENOENT') return;
    if (errno !== 'EBUSY' && errno !== 'ENOTEMPTY') throw new RemoveFailure('rmdir', dir, error);
  }
  let children: string[];
  try {
    children = await fs.listDirs(dir);
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return;
    throw new RemoveFailure('list', dir, error);
  }
  for (const child of children) await removeOnce(fs, join(dir, child));
  try {
    await fs.rmdir(dir);
  } catch (error) {
    if (errnoOf(error) !== 'ENOENT') throw new RemoveFailure('rmdir', dir, error);
  }
}

/**
 * Removes a cgroup directory and its child cgroups, deepest first. A cgroup whose last tasks are
 * still exiting answers EBUSY (as does one a new child cgroup appeared in; other file systems, as
 * the tests' fake, say ENOTEMPTY), so those are retried with a short, doubling pause. A directory
 * that is already gone is fine.
 */
export async function removeCgroupTree(
  fs: CgroupFs,
  dir: string,
  options: RemoveOptions = {},
): Promise<void> {
  // Under load, the last tasks of a killed cgroup can take seconds to go: up to ~4 s in all.
  const attempts = options.attempts ?? 12;
  const delayMs = options.delayMs ?? 10;
  for (let attempt = 1; ; attempt++) {
    try {
      await removeOnce(fs, dir);
      return;
    } catch (failure) {
      if (!(failure instanceof RemoveFailure)) throw failure;
      const errno = errnoOf(failure.error);
      const retryable = errno === 'EBUSY' || errno === 'ENOTEMPTY';
      if (retryable && attempt < attempts) {
        await sleep(Math.min(delayMs * 2 ** (attempt - 1), 500));
        continue;
      }
      if (retryable) {
        throw new CgroupError(
          'ECGROUPBUSY',
          `cannot remove cgroup ${failure.dir}: ${errno} after ${attempts} attempts (processes or child cgroups remain)`,
          { path: failure.dir, errno, cause: failure.error },
        );
      }
      throw ioError(failure.op, failure.dir, failure.error);
    }
  }
}
