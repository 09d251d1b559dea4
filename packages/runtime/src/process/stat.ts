/**
 * /proc/PID/stat: a process's state and start time. The start time (field 22, clock ticks
 * after boot) together with the pid names one process for good: a pid is reused only after
 * its process is gone, and a new process with the same pid starts later.
 */
import { closeSync, readSync } from 'node:fs';
import { AT_FDCWD, O_DIRECTORY, O_PATH, O_RDONLY, openat, SyscallError } from '@box/sys';

export interface ProcessStat {
  /** Field 3: R, S, D, T, Z (zombie), X (dead), ... */
  state: string;
  /** Field 22: when the process started, in clock ticks after boot. */
  startTime: number;
}

const GONE = new Set(['ENOENT', 'ESRCH']);

/**
 * The stat of the process whose /proc directory `dir` is (an fd of /proc/PID; opened
 * relative to it, the file always belongs to the process the directory was opened for),
 * or undefined once that process has been reaped.
 */
export function readProcessStat(dir: number): ProcessStat | undefined {
  let fd: number;
  try {
    fd = openat(dir, 'stat', O_RDONLY);
  } catch (error) {
    if (error instanceof SyscallError && GONE.has(error.code)) return undefined;
    throw error;
  }
  let text: string;
  try {
    const buf = Buffer.alloc(4096);
    let size = 0;
    for (;;) {
      const n = readSync(fd, buf, size, buf.length - size, null);
      size += n;
      if (n === 0 || size === buf.length) break;
    }
    text = buf.toString('latin1', 0, size);
  } catch (error) {
    // Reading the file of a process reaped since the open fails with ESRCH.
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return undefined;
    throw error;
  } finally {
    closeSync(fd);
  }
  return parseStat(text);
}

/** Fields after the command name, which is in parentheses and may itself hold ") ". */
export function parseStat(text: string): ProcessStat | undefined {
  const end = text.lastIndexOf(')');
  if (end < 0) return undefined;
  const fields = text.slice(end + 2).split(' ');
  const startTime = Number(fields[19]);
  if (!fields[0] || !Number.isSafeInteger(startTime)) return undefined;
  return { state: fields[0], startTime };
}

/**
 * The start time of process `pid` (field 22 of /proc/PID/stat), or undefined when there is
 * no such process or it has ended (a zombie). Record it with the pid, and hand both to
 * openProcess later: a recycled pid is then never mistaken for the process.
 */
export function processStartTime(pid: number): number | undefined {
  let dir: number;
  try {
    dir = openat(AT_FDCWD, `/proc/${pid}`, O_PATH | O_DIRECTORY);
  } catch {
    return undefined;
  }
  try {
    const stat = readProcessStat(dir);
    return stat && !isEnded(stat) ? stat.startTime : undefined;
  } finally {
    closeSync(dir);
  }
}

/** A zombie (or a dead task) has ended: only its exit status is left. */
export function isEnded(stat: ProcessStat): boolean {
  return stat.state === 'Z' || stat.state === 'X';
}
