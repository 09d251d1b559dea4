/** The container lifecycle commands: create, start, stop, kill, rm, restart, wait, rename. */
import { closeSync, existsSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCgroupManager } from '@box/cgroups';
import {
  type ContainerState,
  findContainer,
  isOwned,
  killOrphanedHolders,
  listContainers,
  processAlive,
  readState,
  removeContainer,
  updateState,
  validateName,
} from '../containers.js';
import { type CreateFlags, prepareContainer } from '../create.js';
import { startDetached } from '../daemon/client.js';
import { CliError } from '../errors.js';
import { isRunning, signalContainer, stopContainer, waitExited } from '../lifecycle.js';
import { namesDir } from '../paths.js';
import { reconcile } from '../recovery.js';
import { parseSignal } from '../signals.js';
import { logs } from './logs.js';

/** Runs `fn` for each reference like docker: errors are printed, the exit status is 1 if any failed. */
async function eachContainer(
  references: string[],
  fn: (reference: string) => Promise<string | undefined>,
): Promise<number> {
  await reconcile();
  let failed = false;
  for (const reference of references) {
    try {
      const out = await fn(reference);
      if (out !== undefined) process.stdout.write(`${out}\n`);
    } catch (error) {
      failed = true;
      process.stderr.write(`box: ${(error as Error).message}\n`);
    }
  }
  return failed ? 1 : 0;
}

export async function create(image: string, command: string[], flags: CreateFlags): Promise<number> {
  await reconcile();
  const { container } = await prepareContainer(image, command, flags);
  closeSync(container.lock);
  process.stdout.write(`${container.id}\n`);
  return 0;
}

export async function start(references: string[], flags: { attach?: boolean }): Promise<number> {
  if (flags.attach && references.length > 1)
    throw new CliError('you cannot start and attach multiple containers at once');
  const code = await eachContainer(references, async (reference) => {
    const state = findContainer(reference);
    if (isRunning(state)) return flags.attach ? undefined : reference;
    await startDetached(state.id);
    return flags.attach ? undefined : reference;
  });
  if (code !== 0 || !flags.attach) return code;
  const state = findContainer(references[0]!);
  return logs(state.id, { follow: true, untilExit: true });
}

export function stop(references: string[], flags: { time?: string }): Promise<number> {
  const seconds = flags.time === undefined ? 10 : Number(flags.time);
  if (!Number.isInteger(seconds) || seconds < 0) throw new CliError(`invalid --time "${flags.time}"`);
  return eachContainer(references, async (reference) => {
    await stopContainer(reference, seconds);
    return reference;
  });
}

export function kill(references: string[], flags: { signal?: string }): Promise<number> {
  const signal = parseSignal(flags.signal ?? 'KILL');
  return eachContainer(references, async (reference) => {
    const state = findContainer(reference);
    if (!isRunning(state)) throw new CliError(`cannot kill container ${reference}: container is not running`);
    updateState(state.id, { error: 'stopped' });
    await signalContainer(state, signal);
    return reference;
  });
}

export async function rm(
  references: string[],
  flags: { force?: boolean; volumes?: boolean },
): Promise<number> {
  // All of them killed first, so that their owners record their ends side by side.
  if (flags.force) await Promise.all(references.map((reference) => killQuietly(reference)));
  return eachContainer(references, async (reference) => {
    const state = findContainer(reference);
    if (
      isRunning(state) ||
      state.status === 'restarting' ||
      (state.status === 'created' && isOwned(state.id))
    ) {
      if (!flags.force) {
        throw new CliError(
          `cannot remove container "${reference}": container is running: stop the container before removing or force remove`,
        );
      }
    }
    if (flags.force) await forceStop(state.id);
    await removeContainer(state, { volumes: flags.volumes });
    return reference;
  });
}

/**
 * rm -f: kills everything of the container, and waits a bounded time for its owner (a
 * foreground box or the service) to record the end. An owner that does not let go in time
 * (stuck, or itself a container child whose box died) does not stop the removal.
 */
async function forceStop(id: string, timeoutMs = 10_000): Promise<void> {
  if (!updateState(id, { error: 'stopped', autoRemove: false })) return;
  const deadline = Date.now() + timeoutMs;
  let nextKill = 0;
  for (;;) {
    let state: ContainerState;
    try {
      state = readState(id);
    } catch {
      return; // removed meanwhile
    }
    const owned = isOwned(id);
    if (!owned && !processAlive(state)) return;
    if (Date.now() >= nextKill) {
      await killEverything(state);
      if (owned) await killOrphanedHolders(id);
      nextKill = Date.now() + 250;
    }
    if (Date.now() >= deadline) return;
    await sleep(20);
  }
}

/** SIGKILL to the container's process and every process in its cgroup (killAll thaws a paused one). */
async function killEverything(state: ContainerState): Promise<void> {
  if (processAlive(state)) {
    try {
      process.kill(state.pid!, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  const cgroup = await createCgroupManager({ path: state.cgroupsPath });
  if (cgroup.dirs.some((dir) => existsSync(dir))) await cgroup.killAll('SIGKILL').catch(() => undefined);
}

async function killQuietly(reference: string): Promise<void> {
  try {
    const state = findContainer(reference);
    if (state.status === 'exited') return;
    updateState(state.id, { error: 'stopped', autoRemove: false });
    await killEverything(state);
  } catch {
    // reported by the removal itself
  }
}

export function restart(references: string[], flags: { time?: string }): Promise<number> {
  const seconds = flags.time === undefined ? 10 : Number(flags.time);
  if (!Number.isInteger(seconds) || seconds < 0) throw new CliError(`invalid --time "${flags.time}"`);
  return eachContainer(references, async (reference) => {
    await stopContainer(reference, seconds);
    const state = findContainer(reference);
    updateState(state.id, { error: undefined });
    await startDetached(state.id);
    return reference;
  });
}

export function wait(references: string[]): Promise<number> {
  return eachContainer(references, async (reference) => {
    const state = await waitExited(findContainer(reference).id);
    return String(state.exitCode ?? 0);
  });
}

export async function rename(reference: string, newName: string): Promise<number> {
  await reconcile();
  validateName(newName);
  const state = findContainer(reference);
  const link = join(namesDir(), newName);
  try {
    symlinkSync(state.id, link);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new CliError(`Conflict. The container name "/${newName}" is already in use`, 1);
    }
    throw error;
  }
  updateState(state.id, { name: newName });
  rmSync(join(namesDir(), state.name), { force: true });
  return 0;
}

/** docker system prune (containers part): removes every stopped container. */
export async function prune(): Promise<number> {
  await reconcile();
  const removed: string[] = [];
  for (const state of listContainers()) {
    if (state.status === 'exited' || (state.status === 'created' && !isOwned(state.id))) {
      await removeContainer(state);
      removed.push(state.id);
    }
  }
  process.stdout.write(
    `Deleted Containers:\n${removed.map((id) => `${id}\n`).join('')}\nTotal: ${removed.length}\n`,
  );
  return 0;
}
