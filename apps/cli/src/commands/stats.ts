/** `box stats`: live resource usage of running containers, from their cgroups. */
import type { ContainerStats } from '@box/runtime';
import { openEngine } from '../engine.js';
import { bytesSize, formatList, sprintf } from '../output/index.js';

export interface StatsFlags {
  stream: boolean;
  format?: string;
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
  const engine = openEngine();
  for (;;) {
    const rows = await engine.stats(references);
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
