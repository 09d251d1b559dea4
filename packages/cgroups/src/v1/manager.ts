import { join } from 'node:path';
import type { CgroupMode, CgroupMount } from '../detect.js';
import { CgroupError, missingController, withController } from '../errors.js';
import type { CgroupFs } from '../fs.js';
import type { CgroupManager, CgroupStats, Resources } from '../manager.js';
import { makeCgroupDirs, removeEmptyParents } from '../parents.js';
import * as pids from '../pids.js';
import { addProcessTo, readPidsRecursive, signalAll } from '../procs.js';
import { type RemoveOptions, removeCgroupTree } from '../remove.js';
import { checkPid, validateResources } from '../validate.js';
import * as blkio from './blkio.js';
import * as cpu from './cpu.js';
import * as cpuacct from './cpuacct.js';
import * as cpuset from './cpuset.js';
import * as devices from './devices.js';
import * as freezer from './freezer.js';
import * as memory from './memory.js';

/** The v1 controllers box works with, in the order they are applied. */
export const V1_BOX_CONTROLLERS = [
  'cpuset',
  'memory',
  'cpu',
  'cpuacct',
  'pids',
  'blkio',
  'devices',
  'freezer',
];

/** Controllers that set limits, in the order they are written (cpuset first, freezer last). */
const LIMITERS = [cpuset, memory, cpu, pids, blkio, devices, freezer];

export interface V1ManagerOptions {
  mode: CgroupMode;
  path: string;
  segments: readonly string[];
  /** Mounted v1 controllers and their hierarchies. */
  mounts: ReadonlyMap<string, CgroupMount>;
  /**
   * Hierarchies without controllers that the container's processes join all the same (mount
   * points): v1's `name=systemd` and, on a hybrid host, the cgroup2 one. See `V1CgroupManager`.
   */
  trackers?: readonly string[];
  /** destroy() leaves the parent cgroups, empty or not (see CreateCgroupManagerOptions). */
  keepParents?: boolean;
  fs: CgroupFs;
}

/**
 * A cgroup in each v1 hierarchy: one directory per hierarchy, `<mount point>/<path>`.
 *
 * Also in the hierarchies that hold no controller but say where a process belongs, as runc does:
 * `name=systemd` (mounted on most v1 hosts) and the cgroup2 tree of a hybrid host. A process
 * left in its caller's cgroup there is, for systemd, part of the caller's unit: stopping or
 * restarting that unit (containerd.service, podman's conmon scope) kills the container with it,
 * and the container reads its caller's cgroup path in /proc/self/cgroup.
 *
 * Those "trackers" are joined as runc joins them, on a best-effort basis: a directory there that
 * cannot be made, or is missing (a container made before box joined them, into which a process
 * is now exec'd), fails nothing, since no limit depends on it. They are removed with the rest,
 * and a failure there fails nothing either.
 * Their processes are not the container's list (`pids`): that comes from the controllers'
 * hierarchies, so a path that names a unit's cgroup there never reaches the unit's processes.
 */
export class V1CgroupManager implements CgroupManager {
  readonly mode: CgroupMode;
  readonly path: string;
  readonly #segments: readonly string[];
  readonly #fs: CgroupFs;
  /** controller → the hierarchy root it is mounted at. */
  readonly #roots = new Map<string, string>();
  readonly #trackers: readonly string[];
  readonly #keepParents: boolean;

  constructor(options: V1ManagerOptions) {
    this.#keepParents = options.keepParents ?? false;
    this.mode = options.mode;
    this.path = options.path;
    this.#segments = options.segments;
    this.#fs = options.fs;
    for (const controller of V1_BOX_CONTROLLERS) {
      const mount = options.mounts.get(controller);
      if (mount) this.#roots.set(controller, mount.mountPoint);
    }
    const controlled = new Set(this.#roots.values());
    this.#trackers = [...new Set(options.trackers ?? [])].filter((root) => !controlled.has(root));
  }

  /** The roots of the hierarchies with box's controllers (co-mounted ones once). */
  #controlled(): string[] {
    return [...new Set(this.#roots.values())];
  }

  /** Every hierarchy's root: those with box's controllers, then the trackers. */
  #hierarchies(): string[] {
    return [...this.#controlled(), ...this.#trackers];
  }

  /**
   * `op` in every hierarchy, side by side, settled once all are done; a tracker's never fails
   * (see the class).
   */
  #onEach(op: (root: string) => Promise<void>): Promise<PromiseSettledResult<void>[]> {
    return Promise.allSettled([
      ...this.#controlled().map(op),
      ...this.#trackers.map((root) => op(root).catch(() => undefined)),
    ]);
  }

  get dirs(): readonly string[] {
    return this.#hierarchies().map((root) => this.#at(root));
  }

  #at(root: string): string {
    return join(root, ...this.#segments);
  }

  #has(controller: string): boolean {
    return this.#roots.has(controller);
  }

  #dir(controller: string): string {
    const root = this.#roots.get(controller);
    if (root === undefined) throw missingController(controller, 'no cgroup v1 hierarchy has it mounted');
    return this.#at(root);
  }

  async create(): Promise<void> {
    const created: string[] = [];
    try {
      // The hierarchies are independent: made side by side (each hierarchy's own directories
      // in order), which on cgroup v1 is most of a container's start-up cost here.
      const results = await Promise.allSettled([
        ...this.#controlled().map((root) => {
          const isCpuset = this.#roots.get('cpuset') === root;
          return makeCgroupDirs(this.#fs, root, this.#segments, created, (dir) =>
            isCpuset ? cpuset.initFromParent(dir, this.#fs) : Promise.resolve(),
          );
        }),
        ...this.#trackers.map((root) => this.#makeTracker(root, created)),
      ]);
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    } catch (error) {
      // Leave nothing half made behind: undo the directories this call made, newest first.
      for (const dir of created.reverse()) await this.#fs.rmdir(dir).catch(() => {});
      throw error;
    }
  }

  /**
   * The cgroup in a tracker hierarchy, or nothing of it when it cannot be made (see the class).
   * What it made joins `created`, undone with the rest when another hierarchy fails.
   */
  async #makeTracker(root: string, created: string[]): Promise<void> {
    const made: string[] = [];
    try {
      await makeCgroupDirs(this.#fs, root, this.#segments, made);
      created.push(...made);
    } catch {
      for (const dir of made.reverse()) await this.#fs.rmdir(dir).catch(() => {});
    }
  }

  async apply(resources: Resources): Promise<void> {
    validateResources(resources);
    const wanted = LIMITERS.filter((limiter) => limiter.isRequested(resources));
    // Every controller asked for must be there before anything is written.
    const dirs = wanted.map((limiter) => this.#dir(limiter.controller));
    for (const [index, limiter] of wanted.entries()) {
      await withController(limiter.controller, () => limiter.apply(dirs[index]!, resources, this.#fs));
    }
  }

  update(resources: Resources): Promise<void> {
    return this.apply(resources);
  }

  async addProcess(pid: number): Promise<void> {
    checkPid(pid);
    // One write per hierarchy; a failure is reported once all are done.
    const results = await this.#onEach((root) => addProcessTo(this.#fs, this.#at(root), pid));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  freeze(): Promise<void> {
    return this.apply({ freezer: 'frozen' });
  }

  thaw(): Promise<void> {
    return this.apply({ freezer: 'thawed' });
  }

  async killAll(signal: NodeJS.Signals | number = 'SIGKILL'): Promise<void> {
    // Not when the freezer's directory is gone (a removal killed half way): thawing it would fail
    // the kill of what still runs in the other hierarchies.
    const canFreeze = this.#has('freezer') && (await this.#fs.exists(this.#dir('freezer')));
    await signalAll({
      signal,
      pids: () => this.pids(),
      freeze: canFreeze ? () => this.freeze() : undefined,
      thaw: canFreeze ? () => this.thaw() : undefined,
    });
  }

  async destroy(options?: RemoveOptions): Promise<void> {
    // The hierarchies are independent, so their retries can wait side by side.
    const results = await this.#onEach(async (root) => {
      const dir = this.#at(root);
      await removeCgroupTree(this.#fs, dir, options);
      if (!this.#keepParents) await removeEmptyParents(this.#fs, dir, root);
    });
    const errors = results.flatMap((result) =>
      result.status === 'rejected' ? [result.reason as CgroupError] : [],
    );
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) {
      const first = errors[0]!;
      throw new CgroupError(
        first.code,
        `cannot remove cgroup ${this.path} from ${errors.length} hierarchies: ${errors.map((e) => e.message).join('; ')}`,
        { path: first.path, errno: first.errno, cause: new AggregateError(errors) },
      );
    }
  }

  async stats(): Promise<CgroupStats> {
    const result: CgroupStats = {};
    if (this.#has('memory')) result.memory = await memory.stats(this.#dir('memory'), this.#fs);
    if (this.#has('cpuacct')) result.cpu = await cpuacct.stats(this.#dir('cpuacct'), this.#fs);
    if (this.#has('pids')) result.pids = await pids.stats(this.#dir('pids'), this.#fs);
    return result;
  }

  oomKilled(): Promise<boolean> {
    return memory.oomKilled(this.#dir('memory'), this.#fs);
  }

  async pids(): Promise<number[]> {
    const all = new Set<number>();
    for (const root of this.#controlled()) await readPidsRecursive(this.#fs, this.#at(root), all);
    return [...all].sort((a, b) => a - b);
  }
}
