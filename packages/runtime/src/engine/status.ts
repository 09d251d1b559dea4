/**
 * What a record's status means now, and the one mapping from how a process ended to docker's
 * exit code (the status, or 128 + the signal that killed it).
 */
import { openProcess } from '../process/handle.js';
import { sameProcessAlive } from './process-info.js';
import type { ContainerRecord } from './types.js';

/** Whether the container's process still runs (same pid, same start time). */
export function processAlive(state: ContainerRecord): boolean {
  return (
    state.status === 'running' && state.pid !== undefined && sameProcessAlive(state.pid, state.pidStartTime)
  );
}

/** SIGKILL to the container's init, if the recorded process still runs (a recycled pid is never hit). */
export function killInit(state: ContainerRecord): void {
  if (state.status !== 'running' || !state.pid) return;
  const init = openProcess(state.pid, state.pidStartTime);
  if (!init) return;
  try {
    init.signal('SIGKILL');
  } finally {
    init.close();
  }
}

/** docker's exit code of a process that ended: its status, or 128 + the signal that killed it. */
export function exitCodeOf(status: { exitCode: number | null; signal: number | null }): number {
  return status.signal !== null ? 128 + status.signal : (status.exitCode ?? 255);
}

/**
 * The exit code recorded for a container whose owner died: an attached one was killed with its
 * owner (SIGKILL: 137); a detached one's status was lost with its supervisor (255).
 */
export function exitCodeOfDeadOwner(state: ContainerRecord): number {
  return state.detached ? 255 : 137;
}
