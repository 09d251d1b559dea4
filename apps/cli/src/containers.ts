/**
 * Container records: $BOX_ROOT/containers/ID/{state.json, config.json, rootfs/,
 * upper/, work/} and $BOX_ROOT/names/NAME -> ID (a symlink, so taking a name is
 * one atomic syscall).
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { tryLock } from '@box/sys';
import { CliError } from './errors.js';
import { containersDir, namesDir } from './paths.js';

export interface ContainerState {
  id: string;
  name: string;
  image: string;
  command: string[];
  created: string;
  status: 'created' | 'running' | 'exited';
  /** Remove the container when it exits (--rm). */
  autoRemove: boolean;
  /** The cgroup below each hierarchy root. */
  cgroupsPath: string;
  pid?: number;
  exitCode?: number;
  oomKilled?: boolean;
  finished?: string;
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

/** Reserves a name and creates the container's directory. Undo with removeContainer. */
export function createContainer(requestedName: string | undefined): NewContainer {
  if (requestedName !== undefined) validateName(requestedName);
  mkdirSync(containersDir(), { recursive: true, mode: 0o711 });
  mkdirSync(namesDir(), { recursive: true, mode: 0o700 });
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
      mkdirSync(dir, { mode: 0o711 });
      const lock = openSync(join(dir, 'lock'), 'w');
      tryLock(lock, join(dir, 'lock'));
      return { id, name, dir, lock };
    } catch (error) {
      rmSync(join(namesDir(), name), { force: true });
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
  }
}

/** Writes state.json atomically (temp file + rename). */
export function writeState(dir: string, state: ContainerState): void {
  const tmp = join(dir, `.state.json.${process.pid}`);
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(tmp, join(dir, 'state.json'));
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

export function removeContainer(container: { id: string; name: string }): void {
  rmSync(join(namesDir(), container.name), { force: true });
  rmSync(join(containersDir(), container.id), { recursive: true, force: true });
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
  const matches = /^[0-9a-f]+$/.test(reference) ? ids.filter((id) => id.startsWith(reference)) : [];
  if (matches.length === 0) throw new CliError(`No such container: ${reference}`);
  if (matches.length > 1)
    throw new CliError(`Multiple containers match ID prefix ${reference}; use more characters`);
  return readState(matches[0]!);
}
