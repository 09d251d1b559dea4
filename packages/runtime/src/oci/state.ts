/**
 * The runc-compatible runtime's state directory: one directory per container under the root
 * (0700, root's), holding `state.json` (what `create` recorded), `config.json` (the bundle's
 * config as it was at create) and, between create and start, the `exec.fifo` the container waits
 * on. The container's status is never stored: it is read from the process (by pidfd and start
 * time), the FIFO and the freezer, so a runtime killed at any point leaves nothing that lies.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '@box/sys';
import { isPaused } from '../engine/freezer.js';
import { sameProcessAlive } from '../engine/process-info.js';
import { RuntimeError } from '../errors.js';
import type { Spec } from '../spec.js';

/** The states of the OCI runtime spec (runtime.md), plus runc's "paused". */
export type OciStatus = 'creating' | 'created' | 'running' | 'paused' | 'stopped';

/** What `state` prints: the spec's state (state-schema.json) with runc's extra fields. */
export interface OciState {
  ociVersion: string;
  id: string;
  status: OciStatus;
  /** 0 once stopped. */
  pid: number;
  bundle: string;
  rootfs: string;
  created: string;
  owner: string;
  annotations?: Record<string, string>;
}

export interface StoredState {
  id: string;
  bundle: string;
  rootfs: string;
  created: string;
  pid: number;
  pidStartTime?: number;
  /**
   * The process that ran `create`, while `pid` is still 0: a create killed before the
   * container's process was recorded leaves a record that must read as stopped, not creating
   * for ever (`delete` without --force refuses a creating container).
   */
  creatorPid?: number;
  creatorStartTime?: number;
  cgroupsPath?: string;
  annotations?: Record<string, string>;
}

/** runc's rule for ids: letters, digits, `_+-.`, not `.` or `..`. */
const ID = /^[\w+.-]+$/;

export function checkId(id: string): void {
  if (!ID.test(id) || id === '.' || id === '..')
    throw new RuntimeError('EINVAL', `invalid container id "${id}"`);
}

export class OciStateDir {
  constructor(readonly root: string) {}

  dir(id: string): string {
    checkId(id);
    return join(this.root, id);
  }

  fifo(id: string): string {
    return join(this.dir(id), 'exec.fifo');
  }

  /** Makes the container's directory; an id in use is refused (nothing changed). */
  claim(id: string): string {
    mkdirSync(this.root, { recursive: true, mode: 0o700 });
    const dir = this.dir(id);
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST')
        throw new RuntimeError('EEXIST', `container with id exists: ${id}`);
      throw error;
    }
    return dir;
  }

  write(state: StoredState, spec?: Spec): void {
    const dir = this.dir(state.id);
    // Atomic (a killed runtime leaves the old file or the new one) but not fsynced, as runc's:
    // the state describes processes, which a power loss ends too, and the root is usually on
    // tmpfs (/run). Two fsyncs cost create about 3 ms on a disk.
    if (spec) writeFileAtomic(join(dir, 'config.json'), JSON.stringify(spec), { fsync: false });
    writeFileAtomic(join(dir, 'state.json'), JSON.stringify(state), { fsync: false });
  }

  /**
   * Whether the container's directory is there without its state.json: a create killed right
   * after making it. (A state.json that does not parse is not that: its container may run.)
   */
  halfMade(id: string): boolean {
    const dir = this.dir(id);
    return existsSync(dir) && !existsSync(join(dir, 'state.json'));
  }

  read(id: string): StoredState {
    try {
      return JSON.parse(readFileSync(join(this.dir(id), 'state.json'), 'utf8')) as StoredState;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR' || error instanceof SyntaxError)
        throw new RuntimeError('ENOTFOUND', `container does not exist: ${id}`);
      throw error;
    }
  }

  spec(id: string): Spec {
    return JSON.parse(readFileSync(join(this.dir(id), 'config.json'), 'utf8')) as Spec;
  }

  remove(id: string): void {
    const dir = this.dir(id);
    // Its few files one by one: Node's recursive rmSync costs `delete` about 2 ms more.
    try {
      for (const name of readdirSync(dir)) unlinkSync(join(dir, name));
      rmdirSync(dir);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      rmSync(dir, { recursive: true, force: true });
    }
  }

  ids(): string[] {
    try {
      return readdirSync(this.root).filter((name) => ID.test(name));
    } catch {
      return [];
    }
  }

  /** The container's status, read from what runs now. */
  async status(state: StoredState): Promise<OciStatus> {
    if (!state.pid)
      return state.creatorPid === undefined || sameProcessAlive(state.creatorPid, state.creatorStartTime)
        ? 'creating'
        : 'stopped';
    // /proc/PID/stat and the recorded start time, not a pidfd: a status is a reading that may be
    // out of date as soon as it is made, and loading koffi for a pidfd would double the cost of
    // `state`, `start` and `delete` of a stopped container (box-runtime's start-up is benchmarked).
    if (!sameProcessAlive(state.pid, state.pidStartTime)) return 'stopped';
    if (existsSync(this.fifo(state.id))) return 'created';
    if (state.cgroupsPath && (await isPaused(state.cgroupsPath))) return 'paused';
    return 'running';
  }

  async state(id: string): Promise<OciState> {
    const stored = this.read(id);
    return this.describe(stored, await this.status(stored));
  }

  /** The spec's state of a container read and looked at already. */
  describe(stored: StoredState, status: OciStatus): OciState {
    const { id } = stored;
    return {
      ociVersion: '1.2.0',
      id,
      status,
      pid: status === 'stopped' ? 0 : stored.pid,
      bundle: stored.bundle,
      rootfs: stored.rootfs,
      created: stored.created,
      owner: '',
      ...(stored.annotations ? { annotations: stored.annotations } : {}),
    };
  }
}
