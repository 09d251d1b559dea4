/**
 * A fake cgroupfs for tests: a temp directory laid out like /sys/fs/cgroup, and a {@link CgroupFs}
 * that does what the kernel does on top of it (control files appear on mkdir, rmdir refuses busy
 * cgroups, a new v1 cpuset starts empty and refuses tasks, `cgroup.subtree_control` hands
 * controllers to children, `cgroup.freeze` updates `cgroup.events`, devices rules update
 * `devices.list`). See src/fake/ for the details.
 */
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { CgroupMode } from './detect.js';
import { filesFor } from './fake/files.js';
import { createKernelFs } from './fake/kernel.js';
import { fakeMountinfo } from './fake/mountinfo.js';
import { allDirs, type FakeHierarchy, type FakeMachine, populate, readText } from './fake/tree.js';
import { type CgroupFs, nodeCgroupFs } from './fs.js';

export interface FakeCgroupfsOptions {
  /** `legacy`: v1 hierarchies only; `hybrid`: plus a v2 one at `unified/`; `unified`: v2 only. */
  layout: CgroupMode;
  /** CPUs of the machine, as in the root `cpuset.cpus` (default `0-3`). */
  cpus?: string;
  /** Memory nodes (default `0`). */
  mems?: string;
  /**
   * legacy/hybrid: the v1 hierarchy directories (default one per controller: cpu, cpuacct, cpuset,
   * memory, devices, freezer, blkio, pids; `cpu,cpuacct` makes a co-mounted one).
   * unified: the controllers the root offers (default cpuset, cpu, io, memory, pids).
   */
  controllers?: readonly string[];
  /** Whether the swap accounting files exist (memory.memsw.*, memory.swap.max). Default true. */
  swapAccounting?: boolean;
  /** v1 only: which block I/O weight file exists (default `blkio.weight`; null for none). */
  blkioWeightFile?: 'blkio.weight' | 'blkio.bfq.weight' | null;
  /** v2 only: whether cgroup.kill exists (Linux 5.14+). Default true. */
  cgroupKill?: boolean;
}

export interface FakeCgroupfs {
  readonly layout: CgroupMode;
  /** The temp directory standing in for /sys/fs/cgroup. */
  readonly root: string;
  /** /proc/self/mountinfo text that mounts the fake hierarchies at their places under `root`. */
  readonly mountinfo: string;
  /** Pass as `fs` to createCgroupManager. */
  readonly fs: CgroupFs;
  /** An absolute path under the root: `path('memory', 'box/c1', 'memory.limit_in_bytes')`. */
  path(...parts: string[]): string;
  /** A file's content without the trailing newline. Parts as for `path`. */
  read(...parts: string[]): Promise<string>;
  /** Sets a file's content as a fixture, without kernel behaviour (e.g. a usage counter). */
  write(relativePath: string, content: string): Promise<void>;
  exists(...parts: string[]): Promise<boolean>;
  /** Every directory under the root, relative to it, for checking that nothing is left. */
  listDirs(): Promise<string[]>;
  /**
   * From now on, answer as the kernel does to an ordinary user of this uid (undefined: root): only
   * directories and files it owns can be written; chown a subtree to it to delegate that.
   */
  actAs(uid: number | undefined): void;
  cleanup(): Promise<void>;
}

const V1_DEFAULT = ['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'blkio', 'pids'];
const V2_DEFAULT = ['cpuset', 'cpu', 'io', 'memory', 'pids'];

function hierarchiesFor(root: string, options: FakeCgroupfsOptions): FakeHierarchy[] {
  if (options.layout === 'unified')
    return [{ version: 2, root, controllers: options.controllers ?? V2_DEFAULT }];
  const hierarchies: FakeHierarchy[] = (options.controllers ?? V1_DEFAULT).map((name) => ({
    version: 1,
    root: join(root, name),
    controllers: name.split(','),
  }));
  // As on this project's machines: the hybrid v2 hierarchy offers hugetlb only.
  if (options.layout === 'hybrid')
    hierarchies.push({ version: 2, root: join(root, 'unified'), controllers: ['hugetlb'] });
  return hierarchies;
}

/** Builds a fake cgroupfs in a new temp directory. Call `cleanup()` when done. */
export async function createFakeCgroupfs(options: FakeCgroupfsOptions): Promise<FakeCgroupfs> {
  const root = await fsp.mkdtemp(join(tmpdir(), 'box-fake-cgroupfs-'));
  const machine: FakeMachine = {
    hierarchies: hierarchiesFor(root, options),
    cpus: options.cpus ?? '0-3',
    mems: options.mems ?? '0',
    swapAccounting: options.swapAccounting ?? true,
    blkioWeightFile: options.blkioWeightFile === undefined ? 'blkio.weight' : options.blkioWeightFile,
    cgroupKill: options.cgroupKill ?? true,
  };
  for (const h of machine.hierarchies) {
    await fsp.mkdir(h.root, { recursive: true });
    await populate(h.root, await filesFor(machine, h, undefined));
  }
  const path = (...parts: string[]) => join(root, ...parts);
  return {
    layout: options.layout,
    root,
    mountinfo: fakeMountinfo(root, machine.hierarchies),
    fs: createKernelFs(machine),
    path,
    read: (...parts) => readText(path(...parts)),
    write: (relativePath, content) => fsp.writeFile(path(relativePath), content),
    exists: (...parts) => nodeCgroupFs.exists(path(...parts)),
    listDirs: async () => (await allDirs(root)).map((dir) => relative(root, dir)).filter((dir) => dir !== ''),
    actAs: (uid) => {
      machine.uid = uid;
    },
    cleanup: () => fsp.rm(root, { recursive: true, force: true }),
  };
}
