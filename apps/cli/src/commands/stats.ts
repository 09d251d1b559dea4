/** `box stats`: live resource usage of running containers, from their cgroups. */
import { setTimeout as sleep } from 'node:timers/promises';
import { type CgroupStats, createCgroupManager } from '@box/cgroups';
import { type ContainerState, findContainer, isOwned, listContainers } from '../containers.js';
import { CliError } from '../errors.js';
import { bytesSize, formatList, sprintf } from '../output/index.js';
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

/** docker's column headers for the fields of a `stats` row. */
const STATS_HEADERS = {
  ID: 'CONTAINER ID',
  Container: 'CONTAINER',
  Name: 'NAME',
  CPUPerc: 'CPU %',
  MemUsage: 'MEM USAGE / LIMIT',
  MemPerc: 'MEM %',
  PIDs: 'PIDS',
};

/** A row as docker's stats context shows it (Container: the reference given, else the short ID). */
function statsRow(r: ContainerStats, reference?: string) {
  return {
    ID: r.id.slice(0, 12),
    Container: reference ?? r.id.slice(0, 12),
    Name: r.name,
    CPUPerc: sprintf('%.2f%%', [r.cpuPercent]),
    MemUsage: `${bytesSize(r.memoryUsage)} / ${r.memoryLimit === null ? 'unlimited' : bytesSize(r.memoryLimit)}`,
    MemPerc: r.memoryPercent === null ? '--' : sprintf('%.2f%%', [r.memoryPercent]),
    PIDs: String(r.pids),
  };
}

export async function stats(references: string[], flags: StatsFlags): Promise<number> {
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
    const text = formatList(
      rows.map((r) =>
        statsRow(
          r,
          references.find((ref) => r.id.startsWith(ref) || r.name === ref),
        ),
      ),
      {
        format: flags.format,
        headers: STATS_HEADERS,
        defaultColumns: ['ID', 'Name', 'CPUPerc', 'MemUsage', 'MemPerc', 'PIDs'],
        typeName: '*container.statsContext',
      },
    );
    process.stdout.write(flags.stream && process.stdout.isTTY ? `\x1b[2J\x1b[H${text}` : text);
    if (!flags.stream) return 0;
  }
}
