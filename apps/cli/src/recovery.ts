/**
 * Clean-up after a box process that died without finishing (SIGKILL, a crash,
 * the machine's OOM killer). Every container has an owner holding its lock
 * while it runs: the foreground `box run` or the box service. Every box
 * command first
 * - removes what a dead process left half made or half removed: staging
 *   directories (containers/.new-ID-PID-START) and trash directories
 *   (containers/.removing-ID-PID-START) of processes that are gone, records
 *   without state.json that nobody holds, names of no container, with their
 *   cgroups and their holds on images;
 * - kills container processes left holding a lock alone: a child whose box
 *   died while it waited at its sync point;
 * - thaws containers that a killed `box commit` paused;
 * - looks for running records whose lock nobody holds:
 *   - the process is gone, or it is a foreground container (it dies with its
 *     box): remove its cgroup, then record the end or, for --rm, remove it;
 *   - a detached container still runs (its service died): start the service
 *     again, which adopts it.
 * A created container left with a cgroup by an interrupted start loses the cgroup.
 * Nothing a running container uses is touched.
 */
import {
  closeSync,
  existsSync,
  fstatSync,
  openSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
} from 'node:fs';
import { join } from 'node:path';
import { createCgroupManager } from '@box/cgroups';
import { tryLock } from '@box/sys';
import {
  type ContainerState,
  claimForRemoval,
  containerDir,
  destroyCgroup,
  killOrphanedHolders,
  listContainers,
  lockContainer,
  processAlive,
  purgeContainerDir,
  readState,
  removeContainer,
  tagAlive,
  writeState,
} from './containers.js';
import { request } from './daemon/client.js';
import { containersDir, namesDir } from './paths.js';

export async function reconcile(options: { skipService?: boolean } = {}): Promise<void> {
  await collectGarbage();
  let orphansRunning = false;
  for (const listed of listContainers()) {
    if (listed.status === 'exited') continue;
    await thawAfterCommit(listed);
    // Holding the lock while cleaning up: an owner cannot take the container meanwhile.
    let lock = lockContainer(listed.id);
    if (lock === null && (await killOrphanedHolders(listed.id))) lock = lockContainer(listed.id);
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
    await destroyCgroup(state.cgroupsPath);
    return false;
  }
  // A detached container outlives its service; a foreground one never outlives its box.
  if (processAlive(state)) {
    if (state.detached) return true;
    try {
      process.kill(state.pid!, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  const oomKilled = await destroyCgroup(state.cgroupsPath);
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
  return false;
}

const HEX64 = /^[0-9a-f]{64}$/;
const LEFTOVER = /^\.(new|removing)-([0-9a-f]{64})-(\d+)(?:-(\d+))?$/;

/** Removes what dead box processes left half made or half removed. */
async function collectGarbage(): Promise<void> {
  let entries: string[];
  try {
    entries = readdirSync(containersDir());
  } catch {
    return; // no containers yet
  }
  const seen = new Set<string>();
  for (const entry of entries) {
    const path = join(containersDir(), entry);
    const leftover = LEFTOVER.exec(entry);
    if (leftover) {
      const [, , id, pid, start] = leftover as unknown as [string, string, string, string, string?];
      seen.add(id);
      // Its maker or remover still works on it.
      if (tagAlive(Number(pid), start === undefined ? undefined : Number(start))) continue;
      const claimed = claimForRemoval(id, path);
      if (claimed) await purgeContainerDir(id, claimed);
      continue;
    }
    if (!HEX64.test(entry)) continue;
    seen.add(entry);
    if (existsSync(join(path, 'state.json'))) continue;
    // A record without state.json (made by an older box) whose maker is gone: nobody holds its lock.
    const lock = lockContainer(entry);
    if (lock === null) continue;
    try {
      if (existsSync(join(path, 'state.json'))) continue;
      const claimed = claimForRemoval(entry, path);
      if (claimed) await purgeContainerDir(entry, claimed);
    } finally {
      closeSync(lock);
    }
  }
  removeStrayNames(seen);
}

/**
 * Names of containers that are nowhere: left by a creator that died before making the
 * directory, or a removal that died after moving it away (and was finished meanwhile).
 */
function removeStrayNames(seen: Set<string>): void {
  let names: string[];
  try {
    names = readdirSync(namesDir());
  } catch {
    return;
  }
  for (const name of names) {
    const link = join(namesDir(), name);
    let id: string;
    try {
      id = readlinkSync(link);
    } catch {
      continue;
    }
    if (!HEX64.test(id) || seen.has(id)) continue;
    // Looked for again, directory list first: one renamed while the list is read is in place after.
    if (readdirSync(containersDir()).some((entry) => entry.includes(id)) || existsSync(containerDir(id)))
      continue;
    try {
      if (readlinkSync(link) === id) rmSync(link);
    } catch {
      // gone meanwhile
    }
  }
}

/** The marker a `box commit` keeps locked while it has a container frozen. */
export function commitPauseMarker(id: string): string {
  return join(containerDir(id), 'commit-pause');
}

/** Thaws a container that a `box commit` froze and then died (its marker is there, unlocked). */
async function thawAfterCommit(state: ContainerState): Promise<void> {
  const marker = commitPauseMarker(state.id);
  let fd: number;
  try {
    fd = openSync(marker, 'r');
  } catch {
    return; // no commit pauses it
  }
  try {
    if (!tryLock(fd, marker)) return; // the commit is still at work
    // Gone before thawing: a commit that starts now makes a new marker and freezes after this.
    rmSync(marker, { force: true });
    await (await createCgroupManager({ path: state.cgroupsPath })).thaw().catch(() => undefined);
  } finally {
    closeSync(fd);
  }
}

/**
 * Takes the commit-pause marker of a container: created and locked, and still the one in
 * place once locked (recovery may have removed the file between open and lock). Close the fd
 * after removing the file to let go.
 */
export async function takeCommitPauseMarker(id: string, timeoutMs = 5000): Promise<number | null> {
  const marker = commitPauseMarker(id);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const fd = openSync(marker, 'a');
    if (tryLock(fd, marker)) {
      let current: number | undefined;
      try {
        current = statSync(marker).ino;
      } catch {
        current = undefined;
      }
      if (current === fstatSync(fd).ino) return fd;
    }
    closeSync(fd);
    if (Date.now() >= deadline) return null;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
