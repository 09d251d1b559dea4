/** What /proc says about a process: its start time, to tell it from a later one with its pid. */
import { readFileSync } from 'node:fs';

/** Field 22 of /proc/PID/stat (clock ticks since boot), or undefined when there is no such live process. */
export function processStartTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
    return Number(fields[19]);
  } catch {
    return undefined;
  }
}

/** Whether the process `pid` runs and, when `start` is given, is the one that started then. */
export function sameProcessAlive(pid: number, start: number | undefined): boolean {
  const now = processStartTime(pid);
  return now !== undefined && (start === undefined || start === now);
}

/** This process as a suffix of staging and trash directories: PID-START. */
export function processTag(): string {
  return `${process.pid}-${processStartTime(process.pid) ?? 0}`;
}
