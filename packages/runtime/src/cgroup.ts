/** The container's cgroup: made and limited before the process runs, removed after it ends. */
import { type CgroupManager, createCgroupManager, type Resources } from '@box/cgroups';
import type { LinuxResources, Spec } from './spec.js';

function toResources(resources: LinuxResources = {}): Resources {
  return {
    memory: resources.memory,
    cpu: resources.cpu,
    pids: resources.pids,
    blockIO: resources.blockIO,
    devices: resources.devices,
  };
}

/** Creates spec.linux.cgroupsPath with spec.linux.resources applied; removes it again if that fails. */
export async function createContainerCgroup(spec: Spec): Promise<CgroupManager | undefined> {
  const path = spec.linux?.cgroupsPath;
  if (!path) return undefined;
  const cgroup = await createCgroupManager({ path });
  await cgroup.create();
  try {
    await cgroup.apply(toResources(spec.linux?.resources));
  } catch (error) {
    await cgroup.destroy();
    throw error;
  }
  return cgroup;
}

/** Kills what is left in the cgroup and removes it; reports whether the OOM killer struck. */
export async function removeContainerCgroup(cgroup: CgroupManager): Promise<{ oomKilled: boolean }> {
  let oomKilled = false;
  try {
    oomKilled = await cgroup.oomKilled();
  } finally {
    if ((await cgroup.pids()).length > 0) await cgroup.killAll('SIGKILL');
    await cgroup.destroy();
  }
  return { oomKilled };
}
