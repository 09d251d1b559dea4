/** `box top`: the processes of a running container. */
import { openEngine } from '../engine.js';
import { table } from '../output/index.js';

function cpuTime(seconds: number): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(Math.floor(seconds / 3600))}:${pad(Math.floor(seconds / 60) % 60)}:${pad(seconds % 60)}`;
}

export async function top(reference: string): Promise<number> {
  const processes = await openEngine().top(reference);
  const rows = processes.map((p) => [p.uid, String(p.pid), String(p.ppid), cpuTime(p.cpuSeconds), p.command]);
  process.stdout.write(table([['UID', 'PID', 'PPID', 'TIME', 'CMD'], ...rows], { minWidth: 20 }));
  return 0;
}
