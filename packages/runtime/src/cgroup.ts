/** The container's cgroup: made and limited before the process runs, removed after it ends. */
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { type CgroupManager, createCgroupManager, type Resources } from '@box/cgroups';
import type { LinuxResources, Spec } from './spec.js';

export function toResources(resources: LinuxResources = {}): Resources {
  return {
    memory: resources.memory,
    cpu: resources.cpu,
    pids: resources.pids,
    blockIO: resources.blockIO,
    // The spec's type is optional: absent means all ("a"), as podman's deny-all rule has it.
    devices: resources.devices?.map((rule) => ({ ...rule, type: rule.type ?? 'a' })),
  };
}

/** How a container's cgroup is removed: its parents with it when left empty, or never. */
export interface CgroupRemoval {
  /** Leave the parents (a cgroupsPath the caller chose, under parents it manages): as runc. */
  keepParents?: boolean;
}

/** Creates spec.linux.cgroupsPath with spec.linux.resources applied; removes it again if that fails. */
export async function createContainerCgroup(
  spec: Spec,
  removal: CgroupRemoval = {},
): Promise<CgroupManager | undefined> {
  const path = spec.linux?.cgroupsPath;
  if (!path) return undefined;
  const cgroup = await createCgroupManager({ path, keepParents: removal.keepParents });
  await cgroup.create();
  try {
    await cgroup.apply(toResources(spec.linux?.resources));
  } catch (error) {
    await cgroup.destroy();
    throw error;
  }
  return cgroup;
}

/**
 * The one cgroup teardown: kills whatever still runs in the cgroup (a paused cgroup is thawed by
 * killAll), waits a bounded time for it to go, removes the cgroup; reports whether the OOM
 * killer struck. Used when a container ends, and by the engine for containers whose owner died.
 */
export async function removeContainerCgroup(
  cgroup: CgroupManager,
  timeoutMs = 5000,
): Promise<{ oomKilled: boolean }> {
  const oomKilled = await cgroup.oomKilled().catch(() => false);
  // Usually nothing is left by now (the container has ended): then one try at the removal is
  // all it takes, without reading every hierarchy's processes first. The kernel refuses to remove
  // a cgroup while a task is in it, so a cgroup that went had nothing left to kill. When the try
  // fails (EBUSY, or another failure, which the full path reports), it may have removed the
  // hierarchies and child cgroups that were empty already; the full path below finds what runs in
  // the rest, kills it and removes the rest (it takes a cgroup gone from some hierarchies).
  const removed = await cgroup.destroy({ attempts: 1 }).then(
    () => true,
    () => false,
  );
  if (removed) return { oomKilled };
  const deadline = Date.now() + timeoutMs;
  while ((await cgroup.pids()).length > 0 && Date.now() < deadline) {
    await cgroup.killAll('SIGKILL');
    await sleep(10);
  }
  await cgroup.destroy();
  return { oomKilled };
}

/** removeContainerCgroup by path; nothing to do when the cgroup is not there. */
export async function removeCgroupAt(
  path: string,
  removal: CgroupRemoval = {},
): Promise<{ oomKilled: boolean }> {
  const cgroup = await createCgroupManager({ path, keepParents: removal.keepParents });
  if (!cgroup.dirs.some((dir) => existsSync(dir))) return { oomKilled: false };
  return removeContainerCgroup(cgroup);
}
