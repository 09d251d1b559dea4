/**
 * Removing a container: its cgroup (the one teardown in ../cgroup.ts), anonymous volumes when
 * asked, the record and its names, its holds on images. Interrupted at any point, what is left
 * is either the whole record, or a containers/.removing-ID-* directory that recovery finishes
 * (purgeContainerDir).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { removeTree } from '@box/sys';
import { removeCgroupAt } from '../cgroup.js';
import { isRuntimeError } from '../errors.js';
import { stopSlirp4netnsIn } from '../network/slirp4netns.js';
import type { EngineContext } from './context.js';
import { releaseNetwork } from './network-attach.js';
import { containerCgroupsPath } from './rootless-cgroups.js';
import type { ContainerRecord } from './types.js';
import { removeVolume } from './volumes.js';

/**
 * Removes a container nothing may run in any more (its owner is gone): what still runs in its
 * cgroup is killed. With `volumes` (or for an auto-removed container, as docker's --rm), its
 * anonymous volumes go too.
 */
export async function removeContainer(
  ctx: EngineContext,
  record: Pick<
    ContainerRecord,
    'id' | 'name' | 'image' | 'cgroupsPath' | 'anonymousVolumes' | 'autoRemove' | 'ports' | 'networks'
  >,
  options: { volumes?: boolean } = {},
): Promise<void> {
  await removeCgroupAt(record.cgroupsPath ?? `box/${record.id}`);
  await releaseNetwork(ctx, record.id, {
    published: (record.ports?.length ?? 0) > 0,
    names: record.networks ?? [],
  });
  if (options.volumes || record.autoRemove) removeAnonymousVolumes(ctx, record);
  // Out of sight in one step, then deleted: nobody can find or add to it meanwhile.
  const trash = ctx.store.claimForRemoval(record.id);
  ctx.store.removeName(record.name, record.id);
  // Before the directory goes: while it is there, an interrupted removal is finished later.
  await ctx.images.release(record.id, { durable: !record.autoRemove }).catch(() => undefined);
  if (trash) removeContainerTree(trash);
  ctx.events.emit('destroy', record);
}

/**
 * The container's anonymous volumes, the ones already gone skipped. One that another container
 * uses too (`-v NAME:/path` of its name, `--volumes-from`) is kept, as docker keeps it: its files
 * are that container's as well, and while it runs it could change the tree under the removal.
 */
export function removeAnonymousVolumes(
  ctx: EngineContext,
  record: Pick<ContainerRecord, 'id' | 'anonymousVolumes'>,
): void {
  const names = record.anonymousVolumes ?? [];
  if (names.length === 0) return;
  const others = ctx.store.list().filter((c) => c.id !== record.id);
  for (const name of names) {
    if (others.some((c) => c.volumes?.includes(name) || c.anonymousVolumes?.includes(name))) continue;
    try {
      removeVolume(ctx.layout, name);
    } catch (error) {
      if (!isRuntimeError(error, 'ENOVOLUME')) throw error;
    }
  }
}

/**
 * Finishes the removal of a container directory whose maker or remover died (a staging or trash
 * directory, or a record without state.json): what runs in its cgroup, its cgroup, its names,
 * its image holds, the directory.
 */
export async function purgeContainerDir(ctx: EngineContext, id: string, path: string): Promise<void> {
  // Without a record (any more): where this box makes a container's cgroup.
  let cgroupsPath = (await containerCgroupsPath(id)) ?? `box/${id}`;
  try {
    cgroupsPath = (JSON.parse(readFileSync(join(path, 'state.json'), 'utf8')) as ContainerRecord).cgroupsPath;
  } catch {
    // the default path
  }
  await removeCgroupAt(cgroupsPath).catch(() => undefined);
  await stopSlirp4netnsIn(path).catch(() => undefined);
  await releaseNetwork(ctx, id).catch(() => undefined);
  ctx.store.removeNamesOf(id);
  await ctx.images.release(id).catch(() => undefined);
  removeContainerTree(path);
}

/**
 * A container's directory (its layer among it), removed as a tree that may still change: a
 * process outside the container (another container it shares a volume with) can hold an fd of
 * a directory of its overlay, passed to it over a socket, and go on writing to the layer through
 * it after every process of the container is dead, swapping a directory for a symlink to the
 * host's while the removal walks it (see removeTree's `changing`). Its depth is as the
 * container's processes made it.
 */
function removeContainerTree(path: string): void {
  removeTree(path, { changing: true });
}
