/**
 * Clean-up after a process that died without finishing (SIGKILL, a crash, the machine's OOM
 * killer). Every container has an owner holding its lock while it runs: the process that runs
 * it attached (a foreground `box run`) or the supervisor (the box service). Before it reads or
 * changes containers, the engine first
 * - removes what a dead process left half made or half removed: staging
 *   directories (containers/.new-ID-PID-START) and trash directories
 *   (containers/.removing-ID-PID-START) of processes that are gone, records
 *   without state.json that nobody holds, names of no container, with their
 *   cgroups and their holds on images, and volumes whose removal was cut short
 *   (volumes/.removing-RANDOM-PID-START);
 * - kills container processes left holding a lock alone: a child whose box
 *   died while it waited at its sync point;
 * - thaws containers that a killed `box commit` paused;
 * - looks for running records whose lock nobody holds:
 *   - the process is gone, or it is a foreground container (it dies with its
 *     box): remove its cgroup, then record the end or, for --rm, remove it;
 *   - a detached container still runs (its service died): a supervisor adopts it.
 * A created or exited container whose start was cut short (its directory still has the marker
 * launch.ts writes first) loses what that start made: its cgroup, addresses and rules. One made by
 * a `run --rm` whose process died before it ran is removed (runPending), and so is a --rm one
 * whose end was recorded by an owner that died before removing it. Other created and exited
 * containers are not looked at.
 * Nothing a running container uses is touched.
 */
import { closeSync, existsSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { EngineContext } from './context.js';
import { thawAfterCommit } from './freezer.js';
import { sameProcessAlive } from './process-info.js';
import { exitCodeOfDeadOwner, killInit, processAlive } from './status.js';
import { newLockScan } from './store.js';
import type { ContainerRecord } from './types.js';

/**
 * Recovers what dead processes left. Cheap when there is nothing to do: containers whose owner
 * holds their lock are skipped after one read of /proc/locks, without a lock call. Returns the
 * containers it could not finish, with the error: one of them does not stop the others, nor a
 * command on another container; a command waiting on that one (wait, stop) gets its error.
 */
export async function reconcile(
  ctx: EngineContext,
  options: { adopt?: boolean } = {},
): Promise<Map<string, unknown>> {
  const failed = new Map<string, unknown>();
  await collectGarbage(ctx);
  let orphansRunning = false;
  // What may need it is read before the locks: a start marked after the scan would look
  // unowned, and cost a look at every process's files to find its owner.
  const candidates = ctx.store.list().filter((listed) => mayNeedRecovery(ctx, listed));
  const scan = newLockScan();
  const locks = new Set(scan.locks.map((lock) => lock.key));
  for (const listed of candidates) {
    await thawAfterCommit(ctx.store.dir(listed.id), listed.cgroupsPath);
    if (ctx.store.isOwned(listed.id, locks) && ctx.store.lockHolders(listed.id, scan).owners.length > 0)
      continue;
    // Holding the lock while cleaning up: an owner cannot take the container meanwhile.
    let lock = ctx.store.lock(listed.id);
    if (lock === null && (await ctx.store.killOrphanedHolders(listed.id))) lock = ctx.store.lock(listed.id);
    if (lock === null) continue;
    try {
      orphansRunning = (await recover(ctx, listed.id)) || orphansRunning;
      ctx.store.clearStarting(listed.id);
    } catch (error) {
      // One container that cannot be finished now (a cgroup that will not go, say) must not make
      // every other command fail: it stays as it is and the next command tries again.
      failed.set(listed.id, error);
    } finally {
      closeSync(lock);
    }
  }
  if (orphansRunning && options.adopt !== false) await ctx.supervision.adoptOrphans();
  await releaseStrayAddresses(ctx);
  return failed;
}

/**
 * Whether a container may have something to finish. One that does not run has something only
 * when a start of it was cut short (marked, see ContainerStore.markStarting), when it was made by
 * a `run --rm` that died before it ran, or when it is a --rm one whose removal was cut short; any
 * other created or exited container is left alone without a lock call.
 */
function mayNeedRecovery(ctx: EngineContext, listed: ContainerRecord): boolean {
  if (listed.status === 'created' && listed.runPending && listed.autoRemove) return true;
  // Its end recorded, its removal cut short (the service removes it after recording the end).
  if (listed.status === 'exited' && listed.autoRemove) return true;
  if (listed.status === 'created' || listed.status === 'exited') return ctx.store.isStarting(listed.id);
  return true;
}

/**
 * Addresses (and published ports' rules) still held by containers that do not run and that
 * nobody is starting (no lock held): an exited container's restart cut short by a SIGKILL, a
 * record removed by hand. Read straight from the pool files, so that a command with nothing to
 * give back loads no networking code.
 */
async function releaseStrayAddresses(ctx: EngineContext): Promise<void> {
  const dir = join(ctx.layout.root, 'networks', 'ipam');
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.ipam.json'));
  } catch {
    return; // no networks
  }
  const stray = new Set<string>();
  for (const file of files) {
    let ids: string[];
    try {
      ids = Object.keys(
        (JSON.parse(readFileSync(join(dir, file), 'utf8')) as { allocations: object }).allocations,
      );
    } catch {
      continue; // the pool's own reader reports a damaged file
    }
    for (const id of ids) {
      let record: ReturnType<EngineContext['store']['read']> | undefined;
      try {
        record = ctx.store.read(id);
      } catch {
        record = undefined;
      }
      if (record && (record.status === 'running' || record.status === 'restarting')) continue;
      stray.add(id);
    }
  }
  if (stray.size === 0) return;
  const { releaseNetwork } = await import('./network-attach.js');
  for (const id of stray) {
    // Being started (its starter holds the lock): not stray.
    const lock = existsSync(ctx.store.dir(id)) ? ctx.store.lock(id) : null;
    if (existsSync(ctx.store.dir(id)) && lock === null) continue;
    try {
      let published = true;
      try {
        published = (ctx.store.read(id).ports?.length ?? 0) > 0;
      } catch {
        // no record: look for rules anyway
      }
      await releaseNetwork(ctx, id, { published });
    } finally {
      if (lock !== null) closeSync(lock);
    }
  }
}

// What only recovery from a dead process needs is loaded then: an ordinary command skips it.
const removal = () => import('./remove.js');
const cgroups = () => import('../cgroup.js');

/** Finishes one unowned container; true when it still runs and needs a supervisor. */
async function recover(ctx: EngineContext, id: string): Promise<boolean> {
  const { removeCgroupAt } = await cgroups();
  const { removeContainer } = await removal();
  let state: ReturnType<EngineContext['store']['read']>;
  try {
    state = ctx.store.read(id);
  } catch {
    return false; // removed meanwhile
  }
  if (state.status === 'created' && state.runPending && state.autoRemove) {
    // A run --rm whose process died before the container ran (its lock is free): docker's run
    // removes a container that could not start, and so does this.
    await removeContainer(ctx, state);
    return false;
  }
  if (state.status === 'exited' && state.autoRemove) {
    // --rm: its owner recorded the end and died before it removed it (see supervisor.ts).
    await removeContainer(ctx, state);
    return false;
  }
  if (state.status === 'created' || state.status === 'exited') {
    // A start cut short (of a created container, or a restart of an exited one): what it made.
    await removeCgroupAt(state.cgroupsPath);
    await (await import('./network-attach.js')).releaseNetwork(ctx, state.id, {
      published: (state.ports?.length ?? 0) > 0,
      names: state.networks ?? [],
    });
    return false;
  }
  // A detached container outlives its supervisor; an attached one never outlives its owner.
  if (processAlive(state)) {
    if (state.detached) return true;
    killInit(state);
  }
  const { oomKilled } = await removeCgroupAt(state.cgroupsPath);
  // Its address and firewall rules: its owner died before giving them back.
  await (await import('./network-attach.js')).releaseNetwork(ctx, state.id, {
    published: (state.ports?.length ?? 0) > 0,
    names: state.networks ?? [],
  });
  const exitCode = exitCodeOfDeadOwner(state);
  ctx.events.emit('die', state, exitCode);
  if (state.autoRemove) await removeContainer(ctx, state);
  else {
    ctx.store.write(ctx.store.dir(state.id), {
      ...state,
      status: 'exited',
      exitCode,
      oomKilled,
      finished: new Date().toISOString(),
      networkSettings: undefined,
      error: state.detached ? 'the box service died while the container ran' : undefined,
    });
  }
  return false;
}

const HEX64 = /^[0-9a-f]{64}$/;
const LEFTOVER = /^\.(new|removing)-([0-9a-f]{64})-(\d+)(?:-(\d+))?$/;

/** Removes what dead processes left half made or half removed. */
async function collectGarbage(ctx: EngineContext): Promise<void> {
  const { layout, store } = ctx;
  let entries: string[];
  try {
    entries = readdirSync(layout.containers);
  } catch {
    return; // no containers yet
  }
  const seen = new Set<string>();
  const purge = async (id: string, path: string) => (await removal()).purgeContainerDir(ctx, id, path);
  for (const entry of entries) {
    const path = join(layout.containers, entry);
    const leftover = LEFTOVER.exec(entry);
    if (leftover) {
      const [, , id, pid, start] = leftover as unknown as [string, string, string, string, string?];
      seen.add(id);
      // Its maker or remover still works on it.
      if (sameProcessAlive(Number(pid), start === undefined ? undefined : Number(start))) continue;
      const claimed = store.claimForRemoval(id, path);
      if (claimed) await purge(id, claimed);
      continue;
    }
    if (!HEX64.test(entry)) continue;
    seen.add(entry);
    if (store.hasRecord(entry, path)) continue;
    // A record without a whole state.json (made by an older box, or written without fsync
    // before a power loss) whose maker is gone: nobody holds its lock.
    const lock = store.lock(entry);
    if (lock === null) continue;
    try {
      if (store.hasRecord(entry, path)) continue;
      const claimed = store.claimForRemoval(entry, path);
      if (claimed) await purge(entry, claimed);
    } finally {
      closeSync(lock);
    }
  }
  removeStrayNames(ctx, seen);
  await removeVolumeLeftovers(ctx);
}

/** Volumes whose removal was cut short (their remover is gone): finished. */
async function removeVolumeLeftovers(ctx: EngineContext): Promise<void> {
  let entries: string[];
  try {
    entries = readdirSync(ctx.layout.volumes).filter((entry) => entry.startsWith('.removing-'));
  } catch {
    return; // no volumes yet
  }
  if (entries.length === 0) return;
  const { removeVolumeTrash, VOLUME_TRASH, volumeTrashName } = await import('./volumes.js');
  for (const entry of entries) {
    const leftover = VOLUME_TRASH.exec(entry);
    if (!leftover || sameProcessAlive(Number(leftover[2]), Number(leftover[3]))) continue;
    // Claimed first (renamed after this process), so that two recoveries never remove it both.
    const claimed = join(ctx.layout.volumes, volumeTrashName());
    try {
      renameSync(join(ctx.layout.volumes, entry), claimed);
      removeVolumeTrash(claimed);
    } catch {
      // Taken by another recovery, or still not removable: a later command tries again.
    }
  }
}

/**
 * Names of containers that are nowhere: left by a creator that died before making the
 * directory, or a removal that died after moving it away (and was finished meanwhile).
 */
function removeStrayNames(ctx: EngineContext, seen: Set<string>): void {
  const { layout } = ctx;
  let names: string[];
  try {
    names = readdirSync(layout.names);
  } catch {
    return;
  }
  for (const name of names) {
    const link = join(layout.names, name);
    let id: string;
    try {
      id = readlinkSync(link);
    } catch {
      continue;
    }
    if (!HEX64.test(id) || seen.has(id)) continue;
    // Looked for again, directory list first: one renamed while the list is read is in place after.
    if (readdirSync(layout.containers).some((entry) => entry.includes(id)) || existsSync(ctx.store.dir(id)))
      continue;
    try {
      if (readlinkSync(link) === id) rmSync(link);
    } catch {
      // gone meanwhile
    }
  }
}
