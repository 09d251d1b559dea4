import { join } from 'node:path';
import type { CgroupMode } from '../detect.js';
import { errnoOf, missingController, withController } from '../errors.js';
import { type CgroupFs, hasCgroupFile } from '../fs.js';
import type { CgroupManager, CgroupStats, Resources } from '../manager.js';
import { makeCgroupDirs, removeEmptyParents } from '../parents.js';
import * as pids from '../pids.js';
import { addProcessTo, readPidsRecursive, signalAll } from '../procs.js';
import { type RemoveOptions, removeCgroupTree } from '../remove.js';
import { checkPid, validateResources } from '../validate.js';
import { enableControllers, readControllers, V2_BOX_CONTROLLERS } from './controllers.js';
import * as cpu from './cpu.js';
import * as cpuset from './cpuset.js';
import * as devices from './devices.js';
import * as freezer from './freezer.js';
import * as io from './io.js';
import { killViaCgroupKill } from './kill.js';
import * as memory from './memory.js';

/** In the order they are written; devices first so that an unsupported request writes nothing. */
const LIMITERS = [devices, cpuset, memory, cpu, pids, io, freezer];

export interface V2ManagerOptions {
  mode: CgroupMode;
  path: string;
  segments: readonly string[];
  /** Where the cgroup2 hierarchy is mounted. */
  root: string;
  /** destroy() leaves the parent cgroups, empty or not (see CreateCgroupManagerOptions). */
  keepParents?: boolean;
  fs: CgroupFs;
}

/** A cgroup in the v2 unified hierarchy: one directory, `<mount point>/<path>`. */
export class V2CgroupManager implements CgroupManager {
  readonly mode: CgroupMode;
  readonly path: string;
  readonly #root: string;
  readonly #segments: readonly string[];
  readonly #dir: string;
  readonly #fs: CgroupFs;
  readonly #keepParents: boolean;

  constructor(options: V2ManagerOptions) {
    this.#keepParents = options.keepParents ?? false;
    this.mode = options.mode;
    this.path = options.path;
    this.#root = options.root;
    this.#segments = options.segments;
    this.#dir = join(options.root, ...options.segments);
    this.#fs = options.fs;
  }

  get dirs(): readonly string[] {
    return [this.#dir];
  }

  /**
   * Makes each level and turns on box's controllers in every parent's `cgroup.subtree_control`
   * (including the hierarchy root's, as runc does) so that the leaf gets them.
   */
  async create(): Promise<void> {
    const created: string[] = [];
    // A parent that was there and that box may not change (root's cgroups above an ordinary
    // user's delegated subtree: EACCES; one with processes of its own, which cgroup v2 lets hand
    // no new controller down: EBUSY) keeps what it hands down: apply() names a controller the
    // container then lacks. Nothing else is passed over.
    const enable = async (dir: string) => {
      try {
        await enableControllers(this.#fs, dir, V2_BOX_CONTROLLERS);
      } catch (error) {
        const errno = errnoOf(error);
        if (created.includes(dir) || !['EACCES', 'EPERM', 'EBUSY'].includes(errno ?? '')) throw error;
      }
    };
    try {
      // Controllers are enabled in each parent's subtree_control before the child is made.
      await enable(this.#root);
      await makeCgroupDirs(this.#fs, this.#root, this.#segments, created, async (dir) => {
        if (dir !== this.#dir) await enable(dir);
      });
    } catch (error) {
      for (const dir of created.reverse()) await this.#fs.rmdir(dir).catch(() => {});
      throw error;
    }
  }

  async apply(resources: Resources): Promise<void> {
    validateResources(resources);
    const wanted = LIMITERS.filter((limiter) => limiter.isRequested(resources));
    if (wanted.length === 0) return;
    await this.#requireAll(wanted.map((limiter) => limiter.controller));
    for (const limiter of wanted) {
      await withController(limiter.controller, () => limiter.apply(this.#dir, resources, this.#fs));
    }
  }

  /** Checks that every controller asked for is usable in this cgroup before anything is written. */
  async #requireAll(controllers: readonly string[]): Promise<void> {
    const offered = await readControllers(this.#fs, this.#dir);
    for (const controller of controllers) {
      if (controller === 'devices') continue; // an eBPF program, not a controller on v2
      if (controller === 'freezer') {
        if (!(await hasCgroupFile(this.#fs, this.#dir, 'cgroup.freeze'))) {
          throw missingController('freezer', `no cgroup.freeze in ${this.#dir}; it needs Linux 5.2 or later`);
        }
      } else if (!offered.has(controller)) {
        throw missingController(controller, `not in ${join(this.#dir, 'cgroup.controllers')}`);
      }
    }
  }

  update(resources: Resources): Promise<void> {
    return this.apply(resources);
  }

  async addProcess(pid: number): Promise<void> {
    checkPid(pid);
    await addProcessTo(this.#fs, this.#dir, pid);
  }

  freeze(): Promise<void> {
    return this.apply({ freezer: 'frozen' });
  }

  thaw(): Promise<void> {
    return this.apply({ freezer: 'thawed' });
  }

  async killAll(signal: NodeJS.Signals | number = 'SIGKILL'): Promise<void> {
    if ((signal === 'SIGKILL' || signal === 9) && (await killViaCgroupKill(this.#dir, this.#fs))) return;
    const canFreeze = await hasCgroupFile(this.#fs, this.#dir, 'cgroup.freeze');
    await signalAll({
      signal,
      pids: () => this.pids(),
      freeze: canFreeze ? () => this.freeze() : undefined,
      thaw: canFreeze ? () => this.thaw() : undefined,
    });
  }

  async destroy(options?: RemoveOptions): Promise<void> {
    await removeCgroupTree(this.#fs, this.#dir, options);
    if (!this.#keepParents) await removeEmptyParents(this.#fs, this.#dir, this.#root);
  }

  async stats(): Promise<CgroupStats> {
    const offered = await readControllers(this.#fs, this.#dir);
    const result: CgroupStats = { cpu: await cpu.stats(this.#dir, this.#fs) };
    if (offered.has('memory')) result.memory = await memory.stats(this.#dir, this.#fs);
    if (offered.has('pids')) result.pids = await pids.stats(this.#dir, this.#fs);
    return result;
  }

  async oomKilled(): Promise<boolean> {
    await this.#requireAll(['memory']);
    return memory.oomKilled(this.#dir, this.#fs);
  }

  async pids(): Promise<number[]> {
    return [...(await readPidsRecursive(this.#fs, this.#dir))].sort((a, b) => a - b);
  }
}
