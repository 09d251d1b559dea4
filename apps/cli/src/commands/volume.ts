/** `box volume create/ls/rm/inspect/prune`. */

import { randomBytes } from 'node:crypto';
import { listContainers } from '../containers.js';
import { CliError } from '../errors.js';
import { formatEach, formatList } from '../output/index.js';
import { reconcile } from '../recovery.js';
import { createVolume, listVolumes, readVolume, removeVolume } from '../volumes.js';

/** Names of the containers (any state) that mount the volume. */
function usersOf(name: string): string[] {
  return listContainers()
    .filter((c) => (c.volumes ?? []).includes(name) || (c.anonymousVolumes ?? []).includes(name))
    .map((c) => c.name);
}

export function volumeCreate(name: string | undefined, flags: { label: string[] }): number {
  const labels = Object.fromEntries(
    flags.label.map((l) => {
      const eq = l.indexOf('=');
      return eq === -1 ? [l, ''] : [l.slice(0, eq), l.slice(eq + 1)];
    }),
  );
  const info = createVolume(name ?? randomBytes(32).toString('hex'), { labels });
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

export function volumeLs(flags: { quiet?: boolean; format?: string }): number {
  const volumes = listVolumes();
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
  await reconcile();
  let failed = false;
  for (const name of names) {
    try {
      if (!readVolume(name)) throw new CliError(`no such volume: ${name}`, 1);
      const users = usersOf(name);
      if (users.length > 0) {
        throw new CliError(`remove ${name}: volume is in use by container(s) ${users.join(', ')}`, 1);
      }
      removeVolume(name);
      process.stdout.write(`${name}\n`);
    } catch (error) {
      failed = true;
      process.stderr.write(`box: ${(error as Error).message}\n`);
    }
  }
  return failed ? 1 : 0;
}

export function volumeInspect(names: string[]): number {
  const found = names.map((name) => readVolume(name));
  for (const [i, info] of found.entries())
    if (!info) process.stderr.write(`box: no such volume: ${names[i]}\n`);
  process.stdout.write(formatEach(found.filter(Boolean)));
  return found.every(Boolean) ? 0 : 1;
}

/** Removes anonymous volumes no container uses (docker's default), or all unused with --all. */
export async function volumePrune(flags: { all?: boolean }): Promise<number> {
  await reconcile();
  const removed: string[] = [];
  for (const volume of listVolumes()) {
    if ((volume.Anonymous || flags.all) && usersOf(volume.Name).length === 0) {
      removeVolume(volume.Name);
      removed.push(volume.Name);
    }
  }
  process.stdout.write(`Deleted Volumes:\n${removed.map((n) => `${n}\n`).join('')}`);
  return 0;
}
