/** What runs in a container and what it uses: top (its processes) and stats (from its cgroup). */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { type CgroupStats, createCgroupManager } from '@box/cgroups';
import { namespacePids } from './rootless.js';
import { hasCgroup } from './rootless-cgroups.js';
import type { ContainerProcessInfo, ContainerRecord, ContainerStats } from './types.js';

/** USER_HZ: the unit of /proc/PID/stat's CPU times on every Linux architecture box runs on. */
const TICKS = 100;

function describe(pid: number): ContainerProcessInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '?';
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
    return {
      uid,
      pid,
      ppid: Number(fields[1]),
      cpuSeconds: Math.floor((Number(fields[11]) + Number(fields[12])) / TICKS),
      command: cmdline || stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')),
    };
  } catch {
    return undefined; // ended meanwhile
  }
}

/** The processes in a container's cgroup (host pids). */
export async function topOf(state: ContainerRecord): Promise<ContainerProcessInfo[]> {
  const pids = !hasCgroup(state)
    ? namespacePids(state.pid)
    : await (await createCgroupManager({ path: state.cgroupsPath })).pids();
  return pids.map(describe).filter((p): p is ContainerProcessInfo => p !== undefined);
}

async function sample(state: ContainerRecord): Promise<{ at: bigint; stats: CgroupStats } | undefined> {
  try {
    const cgroup = await createCgroupManager({ path: state.cgroupsPath });
    return { at: process.hrtime.bigint(), stats: await cgroup.stats() };
  } catch {
    return undefined; // ended meanwhile
  }
}

/** Usage of each container over `intervalMs` (CPU % is CPU time over wall time); ended ones are left out. */
export async function statsOf(states: ContainerRecord[], intervalMs = 500): Promise<ContainerStats[]> {
  const first = await Promise.all(states.map(sample));
  await sleep(intervalMs);
  const second = await Promise.all(states.map(sample));
  const out: ContainerStats[] = [];
  states.forEach((state, i) => {
    const a = first[i];
    const b = second[i];
    if (!a || !b) return;
    const cpuNs = (b.stats.cpu?.usageNs ?? 0) - (a.stats.cpu?.usageNs ?? 0);
    const wallNs = Number(b.at - a.at);
    const memory = b.stats.memory;
    out.push({
      id: state.id,
      name: state.name,
      cpuPercent: wallNs > 0 ? (100 * cpuNs) / wallNs : 0,
      memoryUsage: memory?.usage ?? 0,
      memoryLimit: memory?.limit ?? null,
      memoryPercent: memory?.limit ? (100 * memory.usage) / memory.limit : null,
      pids: b.stats.pids?.current ?? 0,
    });
  });
  return out;
}
