/** `box stats`: live resource usage of running containers, from their cgroups. */
import { setTimeout as sleep } from 'node:timers/promises';
import { type CgroupStats, createCgroupManager } from '@box/cgroups';
import { type ContainerState, findContainer, isOwned, listContainers } from '../containers.js';
import { CliError } from '../errors.js';
import { reconcile } from '../recovery.js';

export interface StatsFlags {
  stream: boolean;
  format?: string;
}

export interface ContainerStats {
  id: string;
  name: string;
  cpuPercent: number;
  memoryUsage: number;
  memoryLimit: number | null;
  memoryPercent: number | null;
  pids: number;
}

async function sample(state: ContainerState): Promise<{ at: bigint; stats: CgroupStats } | undefined> {
  try {
    const cgroup = await createCgroupManager({ path: state.cgroupsPath });
    return { at: process.hrtime.bigint(), stats: await cgroup.stats() };
  } catch {
    return undefined; // ended meanwhile
  }
}

function units(bytes: number): string {
  const names = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let i = 0;
  while (value >= 1024 && i < names.length - 1) {
    value /= 1024;
    i++;
  }
  return `${value.toFixed(i === 0 ? 0 : 2)}${names[i]}`;
}

async function collect(states: ContainerState[]): Promise<ContainerStats[]> {
  const first = await Promise.all(states.map(sample));
  await sleep(500);
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

function table(rows: ContainerStats[]): string {
  const lines = [['CONTAINER ID', 'NAME', 'CPU %', 'MEM USAGE / LIMIT', 'MEM %', 'PIDS']];
  for (const r of rows) {
    lines.push([
      r.id.slice(0, 12),
      r.name,
      `${r.cpuPercent.toFixed(2)}%`,
      `${units(r.memoryUsage)} / ${r.memoryLimit === null ? 'unlimited' : units(r.memoryLimit)}`,
      r.memoryPercent === null ? '--' : `${r.memoryPercent.toFixed(2)}%`,
      String(r.pids),
    ]);
  }
  const widths = lines[0]!.map((_, col) => Math.max(...lines.map((l) => l[col]!.length)));
  return `${lines
    .map((l) =>
      l
        .map((cell, col) => cell.padEnd(widths[col]!))
        .join('   ')
        .trimEnd(),
    )
    .join('\n')}\n`;
}

export async function stats(references: string[], flags: StatsFlags): Promise<number> {
  if (flags.format !== undefined && flags.format !== 'json' && flags.format !== 'table') {
    throw new CliError(`unsupported --format "${flags.format}": use "table" or "json"`);
  }
  await reconcile();
  const pick = () =>
    references.length > 0
      ? references.map((ref) => {
          const state = findContainer(ref);
          if (!isOwned(state.id)) throw new CliError(`container ${ref} is not running`);
          return state;
        })
      : listContainers().filter((s) => s.status !== 'exited' && isOwned(s.id));
  for (;;) {
    const rows = await collect(pick());
    const text =
      flags.format === 'json'
        ? `${rows.map((r) => JSON.stringify(r)).join('\n')}${rows.length ? '\n' : ''}`
        : table(rows);
    process.stdout.write(flags.stream && process.stdout.isTTY ? `\x1b[2J\x1b[H${text}` : text);
    if (!flags.stream) return 0;
  }
}
