/** `box volume create/ls/rm/inspect/prune`. */

import type { VolumeInfo } from '@box/runtime';
import { confirm } from '../confirm.js';
import { eachReference } from '../each.js';
import { openEngine } from '../engine.js';
import { formatEach, formatList } from '../output/index.js';

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

/** docker's column headers for the fields of a `volume ls` row. */
const VOLUME_HEADERS = {
  Name: 'VOLUME NAME',
  Driver: 'DRIVER',
  Scope: 'SCOPE',
  Mountpoint: 'MOUNTPOINT',
  Labels: 'LABELS',
  CreatedAt: 'CREATED AT',
};

export async function volumeLs(flags: { quiet?: boolean; format?: string }): Promise<number> {
  const volumes = await openEngine().listVolumes();
  if (flags.quiet) process.stdout.write(volumes.map((v) => `${v.Name}\n`).join(''));
  else {
    process.stdout.write(
      formatList(
        volumes.map((v) => ({ ...v })),
        {
          format: flags.format,
          headers: VOLUME_HEADERS,
          defaultColumns: ['Driver', 'Name'],
          typeName: '*formatter.volumeContext',
        },
      ),
    );
  }
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
  process.stdout.write(formatEach(found));
  return code;
}

/** Removes anonymous volumes no container uses (docker's default), or all unused with --all. */
export async function volumePrune(flags: { all?: boolean; force?: boolean }): Promise<number> {
  const warning = flags.all
    ? 'This will remove all local volumes not used by at least one container.'
    : 'This will remove anonymous local volumes not used by at least one container.';
  if (!(await confirm(warning, flags.force))) return 0;
  const removed = await openEngine().pruneVolumes({ all: flags.all });
  process.stdout.write(`Deleted Volumes:\n${removed.map((n) => `${n}\n`).join('')}`);
  return 0;
}
