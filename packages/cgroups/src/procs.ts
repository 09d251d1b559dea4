import { join } from 'node:path';
import { errnoOf } from './errors.js';
import { type CgroupFs, listChildCgroups, readCgroupFile, writeCgroupFile } from './fs.js';
import { parsePids } from './values.js';

/**
 * PIDs in `cgroup.procs` of a cgroup and all its child cgroups. A cgroup that is not there (or
 * goes while it is read) has none: a removal killed half way leaves a container's cgroup in some
 * v1 hierarchies only, and whoever finishes that removal must still see what runs in the rest.
 */
export async function readPidsRecursive(
  fs: CgroupFs,
  dir: string,
  into = new Set<number>(),
): Promise<Set<number>> {
  let procs: string;
  let children: string[];
  try {
    procs = await readCgroupFile(fs, dir, 'cgroup.procs');
    children = await listChildCgroups(fs, dir);
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return into;
    throw error;
  }
  for (const pid of parsePids(procs)) into.add(pid);
  for (const child of children) await readPidsRecursive(fs, join(dir, child), into);
  return into;
}

export async function addProcessTo(fs: CgroupFs, dir: string, pid: number): Promise<void> {
  await writeCgroupFile(fs, dir, 'cgroup.procs', pid);
}

/** Sends a signal to each PID; processes that are already gone are skipped. */
export function signalPids(pids: Iterable<number>, signal: NodeJS.Signals | number): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch (error) {
      if (errnoOf(error) !== 'ESRCH') throw error;
    }
  }
}

/**
 * Signals every process as runc does: freeze first, so nothing forks past the signal, signal,
 * then thaw so that the signal can be handled (a frozen task does not even die of SIGKILL).
 * Without a freezer the processes are signalled as they are.
 */
export async function signalAll(options: {
  signal: NodeJS.Signals | number;
  pids: () => Promise<Iterable<number>>;
  freeze?: () => Promise<void>;
  thaw?: () => Promise<void>;
}): Promise<void> {
  if (options.freeze) {
    try {
      await options.freeze();
    } catch {
      // Best effort, as in runc: a cgroup that will not freeze still gets its signal.
    }
  }
  try {
    signalPids(await options.pids(), options.signal);
  } finally {
    // Thaw even after a failed freeze: it may have left the cgroup half frozen.
    if (options.freeze) await options.thaw?.();
  }
}
