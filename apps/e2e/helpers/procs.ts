/** What /proc says about the processes a test looks for (box's service, its children). */
import { readdirSync, readFileSync } from 'node:fs';
import { boxBin } from './box.js';

/** The fields of /proc/PID/stat after the command name: [0] state, [1] ppid, [3] session, … */
export function statFields(pid: number | string): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** The parent pid of a process. */
export function parentOf(pid: number): number {
  return Number(statFields(pid)[1]);
}

/** The state letter of a process (R, S, Z, ...), or undefined once it is gone (reaped). */
export function stateOf(pid: number): string | undefined {
  try {
    return statFields(pid)[0];
  } catch {
    return undefined;
  }
}

/** Pids whose parent is `pid`. */
export function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((entry) => {
      try {
        return Number(statFields(entry)[1]) === pid;
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** The box service of the state root `root`, if one runs. */
export function servicePid(root: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (!cmdline.includes('service') || !cmdline.includes(boxBin)) continue;
      const environ = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      if (environ.includes(`BOX_ROOT=${root}`)) return Number(entry);
    } catch {
      // gone
    }
  }
  return undefined;
}
