/**
 * Operations on containers by name or ID that the CLI does itself: signalling
 * (it is root, and checks the pid's start time so a recycled pid is never hit)
 * and waiting for a container's owner to record its end.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createCgroupManager } from '@box/cgroups';
import { isPaused } from './commands/pause.js';
import {
  type ContainerState,
  findContainer,
  isOwned,
  processAlive,
  readState,
  updateState,
} from './containers.js';
import { CliError } from './errors.js';
import { reconcile } from './recovery.js';

export function isRunning(state: ContainerState): boolean {
  return state.status === 'running' && processAlive(state);
}

/**
 * Sends a signal to the container's init process. A paused container is thawed
 * afterwards for SIGTERM/SIGKILL: frozen tasks cannot act on them (as docker does).
 */
export async function signalContainer(state: ContainerState, signal: number): Promise<void> {
  if (!isRunning(state)) throw new CliError(`container ${state.name} is not running`, 1);
  try {
    process.kill(state.pid!, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
  if ((signal === 9 || signal === 15) && (await isPaused(state.cgroupsPath))) {
    await (await createCgroupManager({ path: state.cgroupsPath })).thaw();
  }
}

/** Waits until the container's record says it has exited; resolves with the record. */
export async function waitExited(id: string, timeoutMs = Number.POSITIVE_INFINITY): Promise<ContainerState> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let state: ContainerState;
    try {
      state = readState(id);
    } catch {
      throw new CliError(`container ${id} was removed`, 1);
    }
    if (state.status === 'exited') return state;
    if (state.status === 'created' && !isOwned(id)) return state;
    // An owner that died cannot write the end: finish its clean-up here.
    if (!isOwned(id)) {
      await reconcile({ skipService: true });
      continue;
    }
    if (Date.now() >= deadline) return state;
    await sleep(25);
  }
}

/** docker stop: SIGTERM (or the given signal), then SIGKILL after `timeout` seconds. */
export async function stopContainer(reference: string, timeoutSeconds: number): Promise<void> {
  const state = findContainer(reference);
  if (state.status === 'restarting') {
    // Between two tries: cancel the next one.
    updateState(state.id, { error: 'stopped' });
    await waitExited(state.id);
    return;
  }
  if (!isRunning(state)) return;
  // A container stopped on purpose is not restarted by its policy.
  updateState(state.id, { error: 'stopped' });
  await signalContainer(state, 15);
  const after = await waitExited(state.id, timeoutSeconds * 1000);
  if (after.status === 'running') {
    await signalContainer(after, 9);
    await waitExited(state.id);
  }
}
