import { writeFileSync } from 'node:fs';
import { RuntimeError } from '../errors.js';

/**
 * Sets a new process's oom_score_adj (the config's `process.oomScoreAdj`) from this side, at its
 * sync point, as runc does before the user namespace: inside one, the child's own
 * /proc/self/oom_score_adj belongs to the host's root (it is not dumpable) and cannot be opened.
 * Its command inherits it.
 *
 * The kernel gives the value to every process that shares the child's memory map: a child that
 * has one gets it from spawn's `ownMemory`, or the caller takes the container's value as well.
 */
export function writeOomScoreAdj(pid: number, value: number): void {
  try {
    writeFileSync(`/proc/${pid}/oom_score_adj`, String(value));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
    throw new RuntimeError(code, `set oom_score_adj ${value}: ${code}`, { cause: error });
  }
}
