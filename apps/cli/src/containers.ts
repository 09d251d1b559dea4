/**
 * Container records: $BOX_ROOT/containers/ID/{state.json, config.json, lock,
 * rootfs/, upper/, work/} and $BOX_ROOT/names/NAME -> ID (a symlink, so taking a
 * name is one atomic syscall).
 *
 * A record appears whole: it is made in containers/.new-ID-PID-START (PID and
 * START: its creator and that process's start time), its lock taken there, and
 * renamed to containers/ID once state.json is written. A record is removed by
 * renaming it to containers/.removing-ID-PID-START first. Either kind left by a
 * process that died is finished by the next command (recovery.ts).
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCgroupManager } from '@box/cgroups';
import { tryLock } from '@box/sys';
import { CliError } from './errors.js';
import { imageStore } from './images.js';
import { containersDir, namesDir } from './paths.js';
import { containerDirMode, secureStateDir } from './state-dir.js';
import { removeVolume } from './volumes.js';

export type ContainerStatus = 'created' | 'running' | 'restarting' | 'exited';

export interface RestartPolicy {
  name: 'no' | 'on-failure' | 'always';
  /** Most restarts for on-failure (0: no limit). */
  maximumRetryCount: number;
}

export interface ContainerState {
  id: string;
  name: string;
  image: string;
  command: string[];
  created: string;
  status: ContainerStatus;
  /** Remove the container when it exits (--rm). */
  autoRemove: boolean;
  /** The cgroup below each hierarchy root. */
  cgroupsPath: string;
  /** The image (its config digest), held in the image store while the container exists. */
  imageId?: string;
  /** The layers of its root filesystem: image layers (top first) and its own. */
  overlay: { lowerdirs: string[]; upperdir: string; workdir: string; layersRoot?: string };
  /** Named volumes it mounts (kept after it), and anonymous ones (removed by rm -v). */
  volumes?: string[];
  anonymousVolumes?: string[];
  /** Started by the box service (run -d, start) rather than by a foreground box run. */
  detached?: boolean;
  restartPolicy?: RestartPolicy;
  restartCount?: number;
  logOptions?: { maxSize?: number; maxFiles?: number };
  pid?: number;
  /** The pid's start time (clock ticks since boot), to tell it from a later process with the same pid. */
  pidStartTime?: number;
  started?: string;
  exitCode?: number;
  oomKilled?: boolean;
  finished?: string;
  /** Why the container did not end normally, e.g. its monitor was lost. */
  error?: string;
}

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const ADJECTIVES = ['brave', 'calm', 'eager', 'gentle', 'happy', 'jolly', 'keen', 'lucid', 'quiet', 'witty'];
const NOUNS = [
  'turing',
  'hopper',
  'lovelace',
  'ritchie',
  'thompson',
  'torvalds',
  'knuth',
  'dijkstra',
  'liskov',
  'kay',
];

export function validateName(name: string): void {
  if (!NAME.test(name)) {
    throw new CliError(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  }
}

function pick<T>(list: readonly T[]): T {
  return list[randomBytes(1)[0]! % list.length]!;
}

export interface NewContainer {
  id: string;
  name: string;
  /** Where the record will be: containers/ID. */
  dir: string;
  /** Where it is made, until publishContainer: containers/.new-ID-PID-START. */
  staging: string;
  /** Open fd of the container's lock file, locked while this process owns the container. */
  lock: number;
}

/** This process as a suffix of staging and trash directories: PID-START, told from a later one with its pid. */
function processTag(): string {
  return `${process.pid}-${processStartTime(process.pid) ?? 0}`;
}

/** Whether the process named by a processTag() suffix still runs. */
export function tagAlive(pid: number, start: number | undefined): boolean {
  const now = processStartTime(pid);
  return now !== undefined && (start === undefined || start === now);
}

/**
 * Creates the container's directory under a staging name with its lock taken, and reserves
 * a name. The directory is closed to everyone but root, and to container root for a container
 * in a user namespace (`userns`; see state-dir.ts). Make the record in `staging`, then
 * publishContainer; undo with discardContainer.
 */
export function createContainer(requestedName: string | undefined, userns = false): NewContainer {
  if (requestedName !== undefined) validateName(requestedName);
  secureStateDir();
  const id = randomBytes(32).toString('hex');
  const dir = join(containersDir(), id);
  // Its creator is in the name: one that died leaves garbage that recovery removes.
  const staging = join(containersDir(), `.new-${id}-${processTag()}`);
  mkdirSync(staging, { mode: 0o700 });
  let lock: number | undefined;
  try {
    containerDirMode(staging, userns);
    lock = openSync(join(staging, 'lock'), 'w', 0o600);
    tryLock(lock, join(staging, 'lock'));
    // The name after the directory: a name whose container has neither is garbage.
    for (let attempt = 0; ; attempt++) {
      const name = requestedName ?? `${pick(ADJECTIVES)}_${pick(NOUNS)}${attempt > 3 ? attempt : ''}`;
      try {
        symlinkSync(id, join(namesDir(), name));
        return { id, name, dir, staging, lock };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        if (requestedName !== undefined) {
          const owner = readlinkSync(join(namesDir(), name));
          throw new CliError(
            `Conflict. The container name "/${name}" is already in use by container "${owner}". You have to remove (or rename) that container to be able to reuse that name.`,
          );
        }
      }
    }
  } catch (error) {
    if (lock !== undefined) closeSync(lock);
    rmSync(staging, { recursive: true, force: true });
    throw error;
  }
}

/** Puts a record made in its staging directory in place (one rename), its lock still held. */
export function publishContainer(container: NewContainer): void {
  renameSync(container.staging, container.dir);
}

/** Undoes createContainer before publishContainer: the name, the image's hold, the directory, the lock. */
export async function discardContainer(container: NewContainer): Promise<void> {
  removeName(container.name, container.id);
  await (await imageStore()).releaseHolder(container.id).catch(() => undefined);
  rmSync(container.staging, { recursive: true, force: true });
  closeSync(container.lock);
}

/**
 * Writes state.json atomically (temp file, fsync, rename), readable by root only: it holds
 * the container's environment. A record removed meanwhile (`box rm -f`) is not brought back.
 */
export function writeState(dir: string, state: ContainerState): void {
  const tmp = join(dir, `.state.json.${process.pid}`);
  let fd: number;
  try {
    fd = openSync(tmp, 'w', 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  try {
    writeSync(fd, `${JSON.stringify(state, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, join(dir, 'state.json'));
}

/** Changes some fields of a record, re-reading it first. */
export function updateState(id: string, change: Partial<ContainerState>): ContainerState | undefined {
  let state: ContainerState;
  try {
    state = readState(id);
  } catch {
    return undefined;
  }
  const next = { ...state, ...change };
  writeState(containerDir(id), next);
  return next;
}

/** Field 22 of /proc/PID/stat, or undefined when there is no such process. */
export function processStartTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
    return Number(fields[19]);
  } catch {
    return undefined;
  }
}

/** Whether the container's process still runs (same pid, same start time). */
export function processAlive(state: ContainerState): boolean {
  if (state.status !== 'running' || !state.pid) return false;
  const start = processStartTime(state.pid);
  return start !== undefined && (state.pidStartTime === undefined || start === state.pidStartTime);
}

/** Takes the container's lock for this process: its fd, or null when another process owns it. */
export function lockContainer(id: string): number | null {
  const path = join(containerDir(id), 'lock');
  let fd: number;
  try {
    // Never created here: a record being removed must not get files back.
    fd = openSync(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null; // removed meanwhile
    throw error;
  }
  if (tryLock(fd, path)) return fd;
  closeSync(fd);
  return null;
}

/** lockContainer, retried for a while: another command may be checking the container briefly. */
export async function lockContainerWait(id: string, timeoutMs = 3000): Promise<number | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const fd = lockContainer(id);
    if (fd !== null || Date.now() >= deadline) return fd;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export function readState(id: string): ContainerState {
  return JSON.parse(readFileSync(join(containersDir(), id, 'state.json'), 'utf8')) as ContainerState;
}

/**
 * Whether a box process still owns the container: it holds the lock from
 * start to exit, and the kernel drops it when that process dies.
 */
export function isOwned(id: string): boolean {
  let fd: number;
  try {
    fd = openSync(join(containersDir(), id, 'lock'), 'r');
  } catch {
    return false;
  }
  try {
    return !tryLock(fd);
  } finally {
    closeSync(fd);
  }
}

/** Every container record, oldest first. */
export function listContainers(): ContainerState[] {
  let ids: string[] = [];
  try {
    ids = readdirSync(containersDir());
  } catch {
    return [];
  }
  const states: ContainerState[] = [];
  for (const id of ids) {
    if (!/^[0-9a-f]{64}$/.test(id)) continue;
    try {
      states.push(readState(id));
    } catch {
      // a record being made or removed
    }
  }
  return states.sort((a, b) => a.created.localeCompare(b.created));
}

export function containerDir(id: string): string {
  return join(containersDir(), id);
}

/**
 * Kills whatever still runs in a container's cgroup and removes the cgroup; reports whether the
 * OOM killer struck. Waits a bounded time for the processes to go.
 */
export async function destroyCgroup(cgroupsPath: string): Promise<boolean> {
  const cgroup = await createCgroupManager({ path: cgroupsPath });
  if (!cgroup.dirs.some((dir) => existsSync(dir))) return false;
  const deadline = Date.now() + 5000;
  while ((await cgroup.pids()).length > 0 && Date.now() < deadline) {
    await cgroup.killAll('SIGKILL');
    await sleep(20);
  }
  const oomKilled = await cgroup.oomKilled().catch(() => false);
  await cgroup.destroy();
  return oomKilled;
}

/** Removes names/NAME if it still names this container (a reused name belongs to another one). */
function removeName(name: string, id: string): void {
  try {
    if (readlinkSync(join(namesDir(), name)) === id) rmSync(join(namesDir(), name));
  } catch {
    // no such name
  }
}

/** Removes every name of a container whose record may be lost. */
function removeNamesOf(id: string): void {
  let names: string[] = [];
  try {
    names = readdirSync(namesDir());
  } catch {
    return;
  }
  for (const name of names) removeName(name, id);
}

/**
 * Removes the record, its cgroup, the writable layer and the container's hold on its image;
 * with `volumes`, also its anonymous volumes (rm -v, and --rm as in docker). Nothing may run
 * in the container any more (its owner is gone): what still runs in its cgroup is killed.
 *
 * Interrupted at any point, what is left is either the whole record, or a
 * containers/.removing-ID-* directory that the next command finishes (finishRemoval).
 */
export async function removeContainer(
  container: {
    id: string;
    name: string;
    imageId?: string;
    cgroupsPath?: string;
    anonymousVolumes?: string[];
    autoRemove?: boolean;
  },
  options: { volumes?: boolean } = {},
): Promise<void> {
  await destroyCgroup(container.cgroupsPath ?? `box/${container.id}`);
  if (options.volumes || container.autoRemove) {
    for (const name of container.anonymousVolumes ?? []) {
      try {
        removeVolume(name);
      } catch {
        // already gone
      }
    }
  }
  // Out of sight in one step, then deleted: nobody can find or add to it meanwhile.
  const trash = join(containersDir(), `.removing-${container.id}-${processTag()}`);
  try {
    renameSync(join(containersDir(), container.id), trash);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  removeName(container.name, container.id);
  // Before the directory goes: while it is there, an interrupted removal is finished later.
  const store = await imageStore();
  if (container.imageId) await store.release(container.imageId, container.id).catch(() => undefined);
  await store.releaseHolder(container.id).catch(() => undefined);
  rmSync(trash, { recursive: true, force: true });
}

/**
 * Finishes the removal of a container directory whose maker or remover died (a staging or
 * trash directory, or a record without state.json): what runs in its cgroup, its cgroup, its
 * names, its image's hold, the directory.
 */
export async function purgeContainerDir(id: string, path: string): Promise<void> {
  let cgroupsPath = `box/${id}`;
  try {
    cgroupsPath = (JSON.parse(readFileSync(join(path, 'state.json'), 'utf8')) as ContainerState).cgroupsPath;
  } catch {
    // no record (any more): the default path
  }
  await destroyCgroup(cgroupsPath).catch(() => undefined);
  removeNamesOf(id);
  await (await imageStore()).releaseHolder(id).catch(() => undefined);
  rmSync(path, { recursive: true, force: true });
}

/** Claims a leftover directory for this process (one rename, so only one process finishes it). */
export function claimForRemoval(id: string, path: string): string | undefined {
  const trash = join(containersDir(), `.removing-${id}-${processTag()}`);
  try {
    renameSync(path, trash);
    return trash;
  } catch {
    return undefined; // claimed by another process, or gone
  }
}

/**
 * The processes that have a container's lock file open, split into box processes of this PID
 * namespace (its owner) and processes of other PID namespaces: a container's first process
 * holds its creator's files until it execs, so one left holding the lock alone is a child that
 * lost its box while it waited at its sync point.
 */
export function lockHolders(id: string): { owners: number[]; children: number[] } {
  let path: string;
  let ino: number;
  try {
    path = realpathSync(join(containersDir(), id, 'lock'));
    ino = statSync(path).ino;
  } catch {
    return { owners: [], children: [] };
  }
  const ownNs = readlinkSync('/proc/self/ns/pid');
  const holds = (pid: number): boolean => {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      return false;
    }
    return fds.some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`) === path;
      } catch {
        return false;
      }
    });
  };
  const inOwnNs = (pid: number): boolean => {
    try {
      return readlinkSync(`/proc/${pid}/ns/pid`) === ownNs;
    } catch {
      return false;
    }
  };
  // Quick answer in the usual case: the process that took the lock still holds it.
  try {
    for (const line of readFileSync('/proc/locks', 'utf8').split('\n')) {
      const match = /^\d+: FLOCK\s+\S+\s+\S+\s+(\d+)\s+[0-9a-f]+:[0-9a-f]+:(\d+)\s/.exec(line);
      if (!match || Number(match[2]) !== ino) continue;
      const pid = Number(match[1]);
      if (pid !== process.pid && inOwnNs(pid) && holds(pid)) return { owners: [pid], children: [] };
    }
  } catch {
    // no /proc/locks: look at every process
  }
  const owners: number[] = [];
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid || !holds(pid)) continue;
    (inOwnNs(pid) ? owners : children).push(pid);
  }
  return { owners, children };
}

/**
 * Kills the processes holding a container's lock when no box process does (children stuck at
 * their sync point after their box died), and waits a while for them to go. True when the
 * lock is then free of them.
 */
export async function killOrphanedHolders(id: string): Promise<boolean> {
  const { owners, children } = lockHolders(id);
  if (owners.length > 0 || children.length === 0) return false;
  for (const pid of children) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  const deadline = Date.now() + 2000;
  while (children.some((pid) => processStartTime(pid) !== undefined) && Date.now() < deadline) {
    await sleep(10);
  }
  return true;
}

/** Finds a container by name, full ID or unique ID prefix. */
export function findContainer(reference: string): ContainerState {
  try {
    return readState(readlinkSync(join(namesDir(), reference)));
  } catch {
    // not a name
  }
  let ids: string[] = [];
  try {
    ids = readdirSync(containersDir());
  } catch {
    // no containers yet
  }
  const matches = /^[0-9a-f]+$/.test(reference)
    ? ids.filter((id) => id.startsWith(reference) && /^[0-9a-f]{64}$/.test(id))
    : [];
  if (matches.length === 0) throw new CliError(`No such container: ${reference}`, 1);
  if (matches.length > 1)
    throw new CliError(`Multiple containers match ID prefix ${reference}; use more characters`, 1);
  return readState(matches[0]!);
}
