/**
 * Clean-up after a box process that died without finishing (SIGKILL, a crash,
 * the machine's OOM killer). Every container has an owner holding its lock
 * while it runs: the foreground `box run` or the box service. Every box
 * command first looks for running records whose lock nobody holds:
 * - the process is gone (a foreground container dies with its box through the
 *   parent-death signal): remove its cgroup, then record the end or, for
 *   --rm, remove it;
 * - the process still runs (a detached container whose service died): start
 *   the service again, which adopts it.
 * A created container left with a cgroup by an interrupted start loses the cgroup.
 * Nothing a running container uses is touched.
 */
import { closeSync, existsSync } from 'node:fs';
import { createCgroupManager } from '@box/cgroups';
import {
  type ContainerState,
  containerDir,
  listContainers,
  lockContainer,
  processAlive,
  readState,
  removeContainer,
  writeState,
} from './containers.js';
import { request } from './daemon/client.js';

async function removeCgroup(state: ContainerState): Promise<boolean> {
  const cgroup = await createCgroupManager({ path: state.cgroupsPath });
  if (!cgroup.dirs.some((dir) => existsSync(dir))) return false;
  if ((await cgroup.pids()).length > 0) await cgroup.killAll('SIGKILL');
  const oomKilled = await cgroup.oomKilled().catch(() => false);
  await cgroup.destroy();
  return oomKilled;
}

export async function reconcile(options: { skipService?: boolean } = {}): Promise<void> {
  let orphansRunning = false;
  for (const listed of listContainers()) {
    if (listed.status === 'exited') continue;
    // Holding the lock while cleaning up: an owner cannot take the container meanwhile.
    const lock = lockContainer(listed.id);
    if (lock === null) continue;
    try {
      orphansRunning = (await recover(listed.id)) || orphansRunning;
    } finally {
      closeSync(lock);
    }
  }
  if (orphansRunning && !options.skipService) await request({ op: 'ping' });
}

/** Finishes one unowned container; true when it still runs and needs the service. */
async function recover(id: string): Promise<boolean> {
  let state: ContainerState;
  try {
    state = readState(id);
  } catch {
    return false; // removed meanwhile
  }
  if (state.status === 'exited') return false;
  if (state.status === 'created') {
    await removeCgroup(state);
    return false;
  }
  if (processAlive(state)) return state.detached === true;
  {
    const oomKilled = await removeCgroup(state);
    if (state.autoRemove) await removeContainer(state);
    else {
      writeState(containerDir(state.id), {
        ...state,
        status: 'exited',
        // A foreground container was killed with its box; a detached one's status was lost with its service.
        exitCode: state.detached ? 255 : 137,
        oomKilled,
        finished: new Date().toISOString(),
        error: state.detached ? 'the box service died while the container ran' : undefined,
      });
    }
  }
  return false;
}
