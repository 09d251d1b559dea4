/** `box stats`: live resource usage of running containers, from their cgroups. */
import type { ContainerStats } from '@box/runtime';
import { openEngine } from '../engine.js';
import { CliError } from '../errors.js';

export interface StatsFlags {
  stream: boolean;
  format?: string;
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
  const engine = openEngine();
  for (;;) {
    const rows = await engine.stats(references);
    const text =
      flags.format === 'json'
        ? `${rows.map((r) => JSON.stringify(r)).join('\n')}${rows.length ? '\n' : ''}`
        : table(rows);
    process.stdout.write(flags.stream && process.stdout.isTTY ? `\x1b[2J\x1b[H${text}` : text);
    if (!flags.stream) return 0;
  }
}
