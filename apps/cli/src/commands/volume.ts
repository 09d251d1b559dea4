/** `box volume create/ls/rm/inspect/prune`. */

import type { VolumeInfo } from '@box/runtime';
import { eachReference } from '../each.js';
import { openEngine } from '../engine.js';
import { CliError } from '../errors.js';
import { renderTemplate, table } from '../format.js';

export async function volumeCreate(name: string | undefined, flags: { label: string[] }): Promise<number> {
  const labels = Object.fromEntries(
    flags.label.map((l) => {
      const eq = l.indexOf('=');
      return eq === -1 ? [l, ''] : [l.slice(0, eq), l.slice(eq + 1)];
    }),
  );
  const info = await openEngine().createVolume(name, { labels });
  process.stdout.write(`${info.Name}\n`);
  return 0;
}

export async function volumeLs(flags: { quiet?: boolean; format?: string }): Promise<number> {
  const volumes = await openEngine().listVolumes();
  if (flags.quiet) process.stdout.write(volumes.map((v) => `${v.Name}\n`).join(''));
  else if (flags.format === 'json')
    process.stdout.write(volumes.map((v) => `${JSON.stringify(v)}\n`).join(''));
  else if (flags.format !== undefined && flags.format !== 'table') {
    try {
      process.stdout.write(volumes.map((v) => `${renderTemplate(flags.format!, { ...v })}\n`).join(''));
    } catch (error) {
      throw new CliError(`invalid --format: ${(error as Error).message}`);
    }
  } else process.stdout.write(table([['DRIVER', 'VOLUME NAME'], ...volumes.map((v) => [v.Driver, v.Name])]));
  return 0;
}

export async function volumeRm(names: string[]): Promise<number> {
  const engine = openEngine();
  return eachReference(names, async (name) => {
    await engine.removeVolume(name);
    return name;
  });
}

export async function volumeInspect(names: string[]): Promise<number> {
  const engine = openEngine();
  const found: VolumeInfo[] = [];
  const code = await eachReference(names, async (name) => {
    found.push(await engine.inspectVolume(name));
    return undefined;
  });
  process.stdout.write(`${JSON.stringify(found, null, 4)}\n`);
  return code;
}

/** Removes anonymous volumes no container uses (docker's default), or all unused with --all. */
export async function volumePrune(flags: { all?: boolean }): Promise<number> {
  const removed = await openEngine().pruneVolumes({ all: flags.all });
  process.stdout.write(`Deleted Volumes:\n${removed.map((n) => `${n}\n`).join('')}`);
  return 0;
}
