/**
 * Container records: containers/ID/{state.json, config.json, lock, …} and names/NAME -> ID (a
 * symlink, so taking a name is one atomic syscall).
 *
 * A record appears whole: it is made in containers/.new-ID-PID-START (PID and START: its
 * creator and that process's start time), its lock taken there, and renamed to containers/ID
 * once state.json is written. A record is removed by renaming it to
 * containers/.removing-ID-PID-START first. Either kind left by a process that died is finished
 * by recovery (recovery.ts).
 *
 * Ownership: the process that runs a container (a foreground attach, or the supervisor) holds
 * an flock on its lock file from start to exit; the kernel drops it when that process dies, so
 * "owned" is never stale.
 */
import {
  closeSync,
  constants,
  existsSync,
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
} from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { tryLock, writeFileAtomic } from '@box/sys';
import { EngineError } from '../errors.js';
import type { Spec } from '../spec.js';
import { containerDir, type Layout } from './layout.js';
import { processStartTime, processTag } from './process-info.js';
import { containerDirMode, secureStateDir } from './state-dir.js';
import type { ContainerRecord } from './types.js';

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const HEX64 = /^[0-9a-f]{64}$/;
/** A container directory's marker of a start under way (see markStarting). */
const STARTING = 'starting';
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

/** Longer names cannot be a file name (the record's name link): refused with a message of its own. */
const NAME_MAX = 253;

export function validateName(name: string): void {
  if (name.length > NAME_MAX)
    throw new EngineError('EINVAL', `Invalid container name: longer than ${NAME_MAX} characters`);
  if (!NAME.test(name)) {
    throw new EngineError(
      'EINVAL',
      `Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`,
    );
  }
}

/** Random bytes from Web Crypto: node:crypto is not loaded by commands that only read records. */
function randomHex(bytes: number): string {
  return Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(bytes))).toString('hex');
}

function pick<T>(list: readonly T[]): T {
  return list[globalThis.crypto.getRandomValues(new Uint8Array(1))[0]! % list.length]!;
}

export interface NewContainer {
  id: string;
  name: string;
  /** Where the record will be: containers/ID. */
  dir: string;
  /** Where it is made, until publish: containers/.new-ID-PID-START. */
  staging: string;
  /** Open fd of the container's lock file, locked while this process owns the container. */
  lock: number;
}

export class ContainerStore {
  constructor(readonly layout: Layout) {}

  dir(id: string): string {
    return containerDir(this.layout, id);
  }

  /**
   * Creates the container's directory under a staging name with its lock taken, and reserves a
   * name. The directory is closed to everyone but root, and to container root for a container in
   * a user namespace (see state-dir.ts). Make the record in `staging`, then publish; undo with
   * discard.
   */
  create(requestedName: string | undefined, userns: boolean): NewContainer {
    if (requestedName !== undefined) validateName(requestedName);
    secureStateDir(this.layout);
    const id = randomHex(32);
    const dir = this.dir(id);
    // Its creator is in the name: one that died leaves garbage that recovery removes.
    const staging = join(this.layout.containers, `.new-${id}-${processTag()}`);
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
          symlinkSync(id, join(this.layout.names, name));
          return { id, name, dir, staging, lock };
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
          if (requestedName !== undefined) {
            const owner = readlinkSync(join(this.layout.names, name));
            throw new EngineError(
              'ENAMEINUSE',
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
  publish(container: NewContainer): void {
    renameSync(container.staging, container.dir);
  }

  /** Undoes create before publish: the name, the directory, the lock. */
  discard(container: NewContainer): void {
    this.removeName(container.name, container.id);
    rmSync(container.staging, { recursive: true, force: true });
    closeSync(container.lock);
  }

  /**
   * Writes state.json atomically, readable by root only (it holds the container's environment).
   * A record removed meanwhile (`rm -f`) is not brought back. `durable: false` skips the fsync,
   * for records nobody needs after a crash.
   */
  write(dir: string, state: ContainerRecord, durable = true): void {
    try {
      writeFileAtomic(join(dir, 'state.json'), `${JSON.stringify(state, null, 2)}\n`, { fsync: durable });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
  }

  /** Changes some fields of a record, re-reading it first; undefined when it is gone. */
  update(id: string, change: Partial<ContainerRecord>, durable = true): ContainerRecord | undefined {
    let state: ContainerRecord;
    try {
      state = this.read(id);
    } catch {
      return undefined;
    }
    const next = { ...state, ...change };
    this.write(this.dir(id), next, durable);
    return next;
  }

  read(id: string): ContainerRecord {
    return JSON.parse(readFileSync(join(this.dir(id), 'state.json'), 'utf8')) as ContainerRecord;
  }

  readSpec(id: string): Spec {
    return JSON.parse(readFileSync(join(this.dir(id), 'config.json'), 'utf8')) as Spec;
  }

  writeSpec(dir: string, spec: Spec, durable = true): void {
    writeFileAtomic(join(dir, 'config.json'), `${JSON.stringify(spec, null, 2)}\n`, { fsync: durable });
  }

  /** Whether a record's state.json is there and whole (one written without fsync may be empty after a power loss). */
  hasRecord(id: string, path = this.dir(id)): boolean {
    try {
      JSON.parse(readFileSync(join(path, 'state.json'), 'utf8'));
      return true;
    } catch {
      return false;
    }
  }

  /** Takes the container's lock for this process: its fd, or null when another process owns it. */
  lock(id: string): number | null {
    const path = join(this.dir(id), 'lock');
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

  /**
   * lock, retried for a while: another process may be checking the container briefly. null at
   * once when the container is gone.
   */
  async lockWait(id: string, timeoutMs = 3000): Promise<number | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const fd = this.lock(id);
      if (fd !== null || Date.now() >= deadline || !existsSync(this.dir(id))) return fd;
      await sleep(20);
    }
  }

  /**
   * Runs `fn` on a fresh read of the record with the container's directory flocked: what
   * changes its networks (connect, disconnect, a start attaching them) one at a time. The
   * directory rather than a file in it (its `lock` is its owner's for its whole run): nothing
   * gets created in a record being removed. ENOCONTAINER when it is gone meanwhile.
   */
  async withNetworkLock<T>(
    id: string,
    fn: (record: ContainerRecord) => Promise<T>,
    timeoutMs = 10_000,
  ): Promise<T> {
    const dir = this.dir(id);
    let fd: number;
    try {
      fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT')
        throw new EngineError('ENOCONTAINER', `No such container: ${id}`);
      throw error;
    }
    try {
      const deadline = Date.now() + timeoutMs;
      while (!tryLock(fd, dir)) {
        if (Date.now() >= deadline)
          throw new EngineError(
            'ESTATE',
            `container ${id} is busy: its networks are being changed by another command`,
          );
        await sleep(10);
      }
      return await fn(this.read(id));
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Marks a start of the container as under way, before it makes anything (a cgroup, addresses,
   * firewall rules). Recovery looks at a created or exited container only while it is marked: a
   * start that was cut short left something to undo, and no other such container has anything.
   * Unmarked, they are neither locked nor checked by every command: 50 `run -d` at once, each
   * command locking each of the others' just created containers to check it, kept the service
   * from taking their locks to start them.
   */
  markStarting(id: string): void {
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW;
    closeSync(openSync(join(this.dir(id), STARTING), flags, 0o600));
  }

  /** Whether a start of the container was under way and has not been cleared (see markStarting). */
  isStarting(id: string): boolean {
    return existsSync(join(this.dir(id), STARTING));
  }

  /** Its start succeeded, or recovery undid what a cut-short one left. */
  clearStarting(id: string): void {
    rmSync(join(this.dir(id), STARTING), { force: true });
  }

  /**
   * Whether a process owns the container (holds its lock). Read from /proc/locks, so asking
   * needs no lock call of its own; a lock file that is gone is owned by nobody.
   */
  isOwned(id: string, locks: Set<string> = heldLockInodes()): boolean {
    let key: string;
    try {
      const stats = statSync(join(this.dir(id), 'lock'));
      key = lockKey(stats.dev, stats.ino);
    } catch {
      return false;
    }
    return locks.has(key);
  }

  /** Every container record, oldest first. */
  list(): ContainerRecord[] {
    let ids: string[] = [];
    try {
      ids = readdirSync(this.layout.containers);
    } catch {
      return [];
    }
    const states: ContainerRecord[] = [];
    for (const id of ids) {
      if (!HEX64.test(id)) continue;
      try {
        states.push(this.read(id));
      } catch {
        // a record being made or removed
      }
    }
    return states.sort((a, b) => a.created.localeCompare(b.created));
  }

  /** Finds a container by name, full ID or unique ID prefix, as docker does. */
  find(reference: string): ContainerRecord {
    try {
      return this.read(readlinkSync(join(this.layout.names, reference)));
    } catch {
      // not a name
    }
    let ids: string[] = [];
    try {
      ids = readdirSync(this.layout.containers);
    } catch {
      // no containers yet
    }
    const matches = /^[0-9a-f]+$/.test(reference)
      ? ids.filter((id) => id.startsWith(reference) && HEX64.test(id))
      : [];
    if (matches.length === 0) throw new EngineError('ENOCONTAINER', `No such container: ${reference}`);
    if (matches.length > 1)
      throw new EngineError(
        'EAMBIGUOUS',
        `Multiple containers match ID prefix ${reference}; use more characters`,
      );
    try {
      return this.read(matches[0]!);
    } catch {
      throw new EngineError('ENOCONTAINER', `No such container: ${reference}`);
    }
  }

  /** Takes a new name for a container (the old one is dropped). */
  rename(record: ContainerRecord, newName: string): void {
    validateName(newName);
    try {
      symlinkSync(record.id, join(this.layout.names, newName));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new EngineError('ENAMEINUSE', `Conflict. The container name "/${newName}" is already in use`);
      }
      throw error;
    }
    this.update(record.id, { name: newName });
    this.removeName(record.name, record.id);
  }

  /** Removes names/NAME if it still names this container (a reused name belongs to another one). */
  removeName(name: string, id: string): void {
    try {
      if (readlinkSync(join(this.layout.names, name)) === id) rmSync(join(this.layout.names, name));
    } catch {
      // no such name
    }
  }

  /** Removes every name of a container whose record may be lost. */
  removeNamesOf(id: string): void {
    let names: string[] = [];
    try {
      names = readdirSync(this.layout.names);
    } catch {
      return;
    }
    for (const name of names) this.removeName(name, id);
  }

  /** Moves a container directory out of sight for removal (one rename); its new path, or undefined when gone. */
  claimForRemoval(id: string, path = this.dir(id)): string | undefined {
    const trash = join(this.layout.containers, `.removing-${id}-${processTag()}`);
    try {
      renameSync(path, trash);
      return trash;
    } catch {
      return undefined; // claimed by another process, or gone
    }
  }

  /**
   * The processes that have a container's lock file open, split into processes of this PID
   * namespace (its owner) and processes of other PID namespaces: a container's first process
   * holds its creator's files until it execs, so one left holding the lock alone is a child that
   * lost its owner while it waited at its sync point.
   */
  lockHolders(id: string, scan: LockScan = newLockScan()): { owners: number[]; children: number[] } {
    let path: string;
    let key: string;
    try {
      path = realpathSync(join(this.dir(id), 'lock'));
      const stats = statSync(path);
      key = lockKey(stats.dev, stats.ino);
    } catch {
      return { owners: [], children: [] };
    }
    const holds = (pid: number): boolean => scan.openFiles(pid).has(path);
    const inOwnNs = (pid: number): boolean => scan.inOwnNs(pid);
    // Quick answer in the usual case: the process that took the lock still holds it. That may be
    // this one: an engine embedded in a program starts a container while another of its calls
    // runs recovery, which must leave that start alone.
    for (const { pid, key: locked } of scan.locks) {
      if (locked === key && inOwnNs(pid) && holds(pid)) {
        return { owners: [pid], children: [] };
      }
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
   * Kills the processes holding a container's lock when no owner does (children stuck at their
   * sync point after their owner died), and waits a while for them to go. True when the lock is
   * then free of them.
   */
  async killOrphanedHolders(id: string): Promise<boolean> {
    const { owners, children } = this.lockHolders(id);
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
}

/** flock(2) locks of the system: holder pid and inode, from /proc/locks. */
function readLocks(): { pid: number; key: string }[] {
  let text: string;
  try {
    text = readFileSync('/proc/locks', 'utf8');
  } catch {
    return [];
  }
  const locks: { pid: number; key: string }[] = [];
  for (const line of text.split('\n')) {
    // "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; "->" lines are waiters, not holders.
    const match = /^\d+: FLOCK\s+\S+\s+\S+\s+(\d+)\s+([0-9a-f]+):([0-9a-f]+):(\d+)\s/.exec(line);
    if (match) {
      const [, pid, major, minor, ino] = match as unknown as [string, string, string, string, string];
      locks.push({
        pid: Number(pid),
        key: `${Number.parseInt(major, 16)}:${Number.parseInt(minor, 16)}:${ino}`,
      });
    }
  }
  return locks;
}

/**
 * One look at the system's locks and at processes' open files, for many `lockHolders` calls
 * (recovery asks for every container): the box service holds an fd or more per container, so
 * reading its fd table once per container made every command cost O(containers²) readlinks.
 */
export interface LockScan {
  readonly locks: readonly { pid: number; key: string }[];
  /** What `pid`'s fds lead to (read once per scan). */
  openFiles(pid: number): Set<string>;
  inOwnNs(pid: number): boolean;
}

export function newLockScan(): LockScan {
  const files = new Map<number, Set<string>>();
  const ownNs = readlinkSync('/proc/self/ns/pid');
  return {
    locks: readLocks(),
    openFiles(pid) {
      let targets = files.get(pid);
      if (!targets) {
        targets = new Set();
        try {
          for (const fd of readdirSync(`/proc/${pid}/fd`)) {
            try {
              targets.add(readlinkSync(`/proc/${pid}/fd/${fd}`));
            } catch {
              // closed meanwhile
            }
          }
        } catch {
          // gone
        }
        files.set(pid, targets);
      }
      return targets;
    },
    inOwnNs(pid) {
      try {
        return readlinkSync(`/proc/${pid}/ns/pid`) === ownNs;
      } catch {
        return false;
      }
    },
  };
}

/** The MAJOR:MINOR:INODE of every held flock (one read of /proc/locks, for isOwned). */
export function heldLockInodes(): Set<string> {
  return new Set(readLocks().map((lock) => lock.key));
}

/** MAJOR:MINOR:INODE of a file as /proc/locks names it (glibc's major()/minor() of st_dev). */
function lockKey(dev: number, ino: number): string {
  const d = BigInt(dev);
  const major = ((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn);
  const minor = (d & 0xffn) | ((d >> 12n) & ~0xffn);
  return `${major}:${minor}:${ino}`;
}
