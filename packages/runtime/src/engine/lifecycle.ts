/**
 * Signalling, stopping and waiting for containers this process may not own: the owner (an
 * attached caller or the supervisor) records the end; these only signal the container's
 * process (checking its start time, so a recycled pid is never hit) and watch the record.
 */
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCgroupManager } from '@box/cgroups';
import { EngineError } from '../errors.js';
import { openProcess } from '../process/handle.js';
import type { EngineContext } from './context.js';
import { isPaused, thaw } from './freezer.js';
import { reconcile } from './recovery.js';
import { parseSignal } from './signals.js';
import { killInit, processAlive } from './status.js';
import type { ContainerRecord } from './types.js';

const SIGKILL = 9;
const SIGTERM = 15;

/**
 * Sends a signal to the container's init process. A paused container is thawed afterwards for
 * SIGTERM/SIGKILL: frozen tasks cannot act on them (as docker does).
 */
export async function signalContainer(state: ContainerRecord, signal: number): Promise<void> {
  // Through a handle on the process that started at the recorded time: never a recycled pid.
  const init =
    state.status === 'running' && state.pid ? openProcess(state.pid, state.pidStartTime) : undefined;
  if (!init) throw new EngineError('ESTATE', `container ${state.name} is not running`);
  try {
    init.signal(signal);
  } finally {
    init.close();
  }
  if ((signal === SIGKILL || signal === SIGTERM) && (await isPaused(state.cgroupsPath))) {
    await thaw(state.cgroupsPath);
  }
}

/** Waits until the container's record says it has ended; resolves with the record. */
export async function waitExited(
  ctx: EngineContext,
  id: string,
  timeoutMs = Number.POSITIVE_INFINITY,
): Promise<ContainerRecord> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let state: ContainerRecord;
    try {
      state = ctx.store.read(id);
    } catch {
      throw new EngineError('ENOCONTAINER', `container ${id} was removed`);
    }
    if (state.status === 'exited') return state;
    const owned = ctx.store.isOwned(id);
    if (state.status === 'created' && !owned) return state;
    // An owner that died cannot write the end: finish its clean-up here. One that cannot be
    // finished ends the wait with why (it would not end by itself).
    if (!owned) {
      const failure = (await reconcile(ctx)).get(id);
      if (failure !== undefined) throw failure;
      // Its lock taken meanwhile (a start, a removal): look again shortly.
      let after: ContainerRecord | undefined;
      try {
        after = ctx.store.read(id);
      } catch {
        // removed: the next read says so
      }
      if (after?.status !== 'exited') await sleep(25);
      continue;
    }
    if (Date.now() >= deadline) return state;
    await sleep(25);
  }
}

/**
 * docker stop: the container's stop signal (SIGTERM unless it has its own), then SIGKILL after
 * `timeoutSeconds`, or its own stop timeout (10 seconds without); a negative one waits for ever.
 */
export async function stopContainer(
  ctx: EngineContext,
  state: ContainerRecord,
  timeoutSeconds: number | undefined,
): Promise<void> {
  const signal = (state.stopSignal !== undefined && parseSignal(state.stopSignal)) || SIGTERM;
  const timeout = timeoutSeconds ?? state.stopTimeout ?? 10;
  if (state.status === 'restarting') {
    // Between two tries: cancel the next one.
    ctx.store.update(state.id, { error: 'stopped' });
    await waitExited(ctx, state.id);
    return;
  }
  if (!processAlive(state)) return;
  // A container stopped on purpose is not restarted by its policy.
  ctx.store.update(state.id, { error: 'stopped' });
  await signalContainer(state, signal);
  const after = await waitExited(ctx, state.id, timeout < 0 ? Number.POSITIVE_INFINITY : timeout * 1000);
  if (after.status === 'running') {
    await signalContainer(after, SIGKILL).catch(() => undefined);
    await waitExited(ctx, state.id);
  }
}

/**
 * remove --force: kills everything of the container, and waits a bounded time for its owner to
 * record the end. 'stopped' once nothing owns it and its process is gone; 'gone' when it was
 * removed meanwhile; 'stuck' when an owner did not let go in time (stuck, or itself a container
 * child whose owner died), which does not stop the removal.
 */
export async function forceStop(
  ctx: EngineContext,
  id: string,
  timeoutMs = 10_000,
): Promise<'stopped' | 'gone' | 'stuck'> {
  if (!ctx.store.update(id, { error: 'stopped', autoRemove: false })) return 'gone';
  const deadline = Date.now() + timeoutMs;
  let nextKill = 0;
  for (;;) {
    let state: ContainerRecord;
    try {
      state = ctx.store.read(id);
    } catch {
      return 'gone'; // removed meanwhile
    }
    const owned = ctx.store.isOwned(id);
    if (!owned && !processAlive(state)) return 'stopped';
    // A start that reached its sync point meanwhile (a racing `box start`, a restart policy's)
    // cleared it: set again, or the process killed below comes back under its policy.
    if (state.error !== 'stopped' || state.autoRemove)
      ctx.store.update(id, { error: 'stopped', autoRemove: false });
    if (Date.now() >= nextKill) {
      await killEverything(state);
      if (owned) await ctx.store.killOrphanedHolders(id);
      nextKill = Date.now() + 250;
    }
    if (Date.now() >= deadline) return 'stuck';
    await sleep(20);
  }
}

/** SIGKILL to the container's process and every process in its cgroup (killAll thaws a paused one). */
export async function killEverything(state: ContainerRecord): Promise<void> {
  killInit(state);
  const cgroup = await createCgroupManager({ path: state.cgroupsPath });
  if (cgroup.dirs.some((dir) => existsSync(dir))) await cgroup.killAll('SIGKILL').catch(() => undefined);
}
