/** `box top`: the processes of a running container, from its cgroup. */
import { readFileSync } from 'node:fs';
import { createCgroupManager } from '@box/cgroups';
import { findContainer } from '../containers.js';
import { CliError } from '../errors.js';
import { isRunning } from '../lifecycle.js';
import { table } from '../output/index.js';
import { reconcile } from '../recovery.js';

const TICKS = 100;

function describe(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '?';
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
    const cpu = Math.floor((Number(fields[11]) + Number(fields[12])) / TICKS);
    const time = `${String(Math.floor(cpu / 3600)).padStart(2, '0')}:${String(Math.floor(cpu / 60) % 60).padStart(2, '0')}:${String(cpu % 60).padStart(2, '0')}`;
    return [
      uid,
      String(pid),
      fields[1]!,
      time,
      cmdline || stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')),
    ];
  } catch {
    return undefined;
  }
}

export async function top(reference: string): Promise<number> {
  await reconcile();
  const state = findContainer(reference);
  if (!isRunning(state)) throw new CliError(`container ${state.id} is not running`, 1);
  const cgroup = await createCgroupManager({ path: state.cgroupsPath });
  const rows = (await cgroup.pids()).map(describe).filter((r): r is string[] => r !== undefined);
  process.stdout.write(table([['UID', 'PID', 'PPID', 'TIME', 'CMD'], ...rows], { minWidth: 20 }));
  return 0;
}
