import type { CgroupMode } from './detect.js';
import type { RemoveOptions } from './remove.js';

/** Memory limits in bytes. -1 means unlimited; leave a field out to keep the current value. */
export interface MemoryResources {
  /** Hard limit (v1 `memory.limit_in_bytes`, v2 `memory.max`). */
  limit?: number;
  /** Soft limit (v1 `memory.soft_limit_in_bytes`, v2 `memory.low`). */
  reservation?: number;
  /**
   * Memory plus swap, like docker's `--memory-swap` and OCI's `memory.swap` (v1
   * `memory.memsw.limit_in_bytes`; on v2 `memory.swap.max` gets this minus `limit`, as runc does).
   */
  swap?: number;
}

/** CPU time and placement, as in OCI's `linux.resources.cpu`. */
export interface CpuResources {
  /** Relative weight, 2..262144 (v1 `cpu.shares`; v2 `cpu.weight` via runc's conversion). */
  shares?: number;
  /** Microseconds of CPU time per period; -1 means no limit. See {@link parseCpus}. */
  quota?: number;
  /** Length of a period in microseconds, 1000..1000000 (default 100000). */
  period?: number;
  /** CPUs the tasks may run on, in list format (`0-2,4`). */
  cpus?: string;
  /** Memory nodes the tasks may use, in list format. */
  mems?: string;
}

export interface PidsResources {
  /** Most tasks at once; 0 or below means unlimited (as docker and runc treat it). */
  limit: number;
}

export interface BlockIoResources {
  /** Relative I/O weight, 10..1000 (v1 `blkio.weight`; v2 `io.weight`/`io.bfq.weight`). */
  weight?: number;
}

/** One device cgroup rule, e.g. `{ allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }`. */
export interface DeviceRule {
  allow: boolean;
  /** `a` (all), `c` (char) or `b` (block). */
  type: 'a' | 'c' | 'b';
  major?: number | '*';
  minor?: number | '*';
  /** Some of `r`, `w`, `m`. */
  access?: string;
}

export type FreezerState = 'frozen' | 'thawed';

/**
 * Limits for a cgroup. Only the sections present are written; a section asks for its controller,
 * and a controller the host lacks is an error (`ECGROUPCONTROLLER`), never skipped.
 */
export interface Resources {
  memory?: MemoryResources;
  cpu?: CpuResources;
  pids?: PidsResources;
  blockIO?: BlockIoResources;
  /**
   * Replaces the device rules: everything is denied, then these rules apply in order.
   * Pass {@link DEFAULT_DEVICE_RULES} for docker's defaults. Not implemented on cgroup v2 yet.
   */
  devices?: readonly DeviceRule[];
  freezer?: FreezerState;
}

/** Current usage. A section is absent when its controller is not mounted. */
export interface CgroupStats {
  memory?: {
    usage: number;
    /** High-water mark; null when the kernel does not report it (v2 without `memory.peak`). */
    peak: number | null;
    /** null when unlimited. */
    limit: number | null;
  };
  cpu?: { usageNs: number };
  pids?: {
    current: number;
    /** null when unlimited. */
    limit: number | null;
  };
}

/** One container's cgroup, in every hierarchy that box uses. Methods reject with CgroupError. */
export interface CgroupManager {
  readonly mode: CgroupMode;
  /** The cgroup path below each hierarchy root, e.g. `box/abc123`. */
  readonly path: string;
  /** The cgroup directories this manager works on (one per v1 hierarchy, one on v2). */
  readonly dirs: readonly string[];

  /** Makes the cgroup directories (and missing parents); existing ones are reused. */
  create(): Promise<void>;
  /** Writes the initial limits. Everything is checked before anything is written. */
  apply(resources: Resources): Promise<void>;
  /** Moves a process (and its threads) into the cgroup. */
  addProcess(pid: number): Promise<void>;
  /** Changes the limits given; the rest stay as they are. */
  update(resources: Resources): Promise<void>;
  /** Freezes every task and waits until the kernel reports the cgroup frozen. */
  freeze(): Promise<void>;
  thaw(): Promise<void>;
  /** Signals every task in the cgroup and its children (default SIGKILL); does not wait for exit. */
  killAll(signal?: NodeJS.Signals | number): Promise<void>;
  /**
   * Removes the cgroup and its child cgroups, deepest first; retries EBUSY briefly (`attempts`:
   * 1 to try once, and fail with ECGROUPBUSY at once while a process is left).
   */
  destroy(options?: RemoveOptions): Promise<void>;
  stats(): Promise<CgroupStats>;
  /** Whether the OOM killer has killed a task of this cgroup (or it is under OOM now, on v1). */
  oomKilled(): Promise<boolean>;
  /** PIDs of the processes in the cgroup and its child cgroups, ascending. */
  pids(): Promise<number[]>;
}
