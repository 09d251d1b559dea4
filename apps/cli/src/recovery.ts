/**
 * Clean-up after a box process that died without finishing (SIGKILL, a crash,
 * the machine's OOM killer): its container was killed with it (parent-death
 * signal), but its record and cgroup remain. Every box command first looks for
 * containers whose lock nobody holds while their record says created/running,
 * and finishes their clean-up.
 */
import { createCgroupManager } from '@box/cgroups';
import { containerDir, isOwned, listContainers, removeContainer, writeState } from './containers.js';

export async function reconcile(): Promise<void> {
  for (const state of listContainers()) {
    if (state.status === 'exited' || isOwned(state.id)) continue;
    const cgroup = await createCgroupManager({ path: state.cgroupsPath });
    if ((await cgroup.pids()).length > 0) await cgroup.killAll('SIGKILL');
    const oomKilled = await cgroup.oomKilled().catch(() => false);
    await cgroup.destroy();
    if (state.autoRemove) removeContainer(state);
    else {
      writeState(containerDir(state.id), {
        ...state,
        status: 'exited',
        exitCode: 137,
        oomKilled,
        finished: new Date().toISOString(),
      });
    }
  }
}
