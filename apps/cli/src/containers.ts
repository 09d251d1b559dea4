/**
 * Container records: $BOX_ROOT/containers/ID/{state.json, config.json, rootfs/,
 * upper/, work/} and $BOX_ROOT/names/NAME -> ID (a symlink, so taking a name is
 * one atomic syscall).
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
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
  dir: string;
  /** Open fd of the container's lock file, locked while this process owns the container. */
  lock: number;
}

/**
 * Reserves a name and creates the container's directory: closed to everyone but root, and to
 * container root for a container in a user namespace (`userns`; see state-dir.ts). Undo with
 * removeContainer.
 */
export function createContainer(requestedName: string | undefined, userns = false): NewContainer {
  if (requestedName !== undefined) validateName(requestedName);
  secureStateDir();
  const id = randomBytes(32).toString('hex');
  for (let attempt = 0; ; attempt++) {
    const name = requestedName ?? `${pick(ADJECTIVES)}_${pick(NOUNS)}${attempt > 3 ? attempt : ''}`;
    try {
      symlinkSync(id, join(namesDir(), name));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      if (requestedName !== undefined) {
        const owner = readlinkSync(join(namesDir(), name));
        throw new CliError(
          `Conflict. The container name "/${name}" is already in use by container "${owner}". You have to remove (or rename) that container to be able to reuse that name.`,
        );
      }
      continue;
    }
    const dir = join(containersDir(), id);
    try {
      mkdirSync(dir, { mode: 0o700 });
      containerDirMode(dir, userns);
      const lock = openSync(join(dir, 'lock'), 'w', 0o600);
      tryLock(lock, join(dir, 'lock'));
      return { id, name, dir, lock };
    } catch (error) {
      rmSync(join(namesDir(), name), { force: true });
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
  }
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
 * Removes the record, the writable layer and the container's hold on its image;
 * with `volumes`, also its anonymous volumes (rm -v, and --rm as in docker).
 */
export async function removeContainer(
  container: {
    id: string;
    name: string;
    imageId?: string;
    anonymousVolumes?: string[];
    autoRemove?: boolean;
  },
  options: { volumes?: boolean } = {},
): Promise<void> {
  removeRecord(container);
  if (options.volumes || container.autoRemove) {
    for (const name of container.anonymousVolumes ?? []) {
      try {
        removeVolume(name);
      } catch {
        // already gone
      }
    }
  }
  if (container.imageId) {
    await (await imageStore()).release(container.imageId, container.id).catch(() => undefined);
  }
}

function removeRecord(container: { id: string; name: string }): void {
  // Only this container's name: a name reused since then belongs to another one.
  try {
    if (readlinkSync(join(namesDir(), container.name)) === container.id)
      rmSync(join(namesDir(), container.name));
  } catch {
    // no such name
  }
  // Out of sight in one step, then deleted: nobody can find or add to it meanwhile.
  const trash = join(containersDir(), `.removing-${container.id}-${process.pid}`);
  try {
    renameSync(join(containersDir(), container.id), trash);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  rmSync(trash, { recursive: true, force: true });
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
