import { CgroupError } from './errors.js';

/**
 * - `unified`: only cgroup v2 (with controllers) is used.
 * - `hybrid`: v1 hierarchies hold the controllers, and a v2 hierarchy is mounted as well
 *   (usually `/sys/fs/cgroup/unified`). box uses the v1 hierarchies then.
 * - `legacy`: only v1.
 */
export type CgroupMode = 'unified' | 'hybrid' | 'legacy';

/** The v1 controllers the kernel knows of; other words in a cgroup mount's options are flags. */
export const V1_CONTROLLERS: readonly string[] = [
  'blkio',
  'cpu',
  'cpuacct',
  'cpuset',
  'devices',
  'freezer',
  'hugetlb',
  'memory',
  'misc',
  'net_cls',
  'net_prio',
  'perf_event',
  'pids',
  'rdma',
];

/** One line of /proc/self/mountinfo, the fields box needs. */
export interface MountinfoEntry {
  /** The directory of the filesystem that is mounted (field 4), e.g. `/` or `/docker/abc`. */
  root: string;
  mountPoint: string;
  fsType: string;
  source: string;
  superOptions: readonly string[];
}

/** A mounted cgroup hierarchy. */
export interface CgroupMount {
  mountPoint: string;
  /** The cgroup path that the mount point shows (`/` unless only a subtree is mounted). */
  root: string;
  /** v1: the controllers of this hierarchy. v2: empty (the list lives in `cgroup.controllers`). */
  controllers: readonly string[];
}

export interface CgroupMounts {
  /** Each mounted v1 controller and its hierarchy (co-mounted controllers share one). */
  v1: ReadonlyMap<string, CgroupMount>;
  /** The cgroup2 mount, if any. */
  v2: CgroupMount | undefined;
  /**
   * v1's `name=systemd` hierarchy, if mounted: no controllers, only systemd's record of which
   * unit a process belongs to.
   */
  systemd?: CgroupMount | undefined;
}

/** Turns the octal escapes of mountinfo (`\040` for a space…) back into characters. */
function unescapeOctal(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

/** Parses /proc/self/mountinfo text. Lines that do not have the expected shape are skipped. */
export function parseMountinfo(text: string): MountinfoEntry[] {
  const entries: MountinfoEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(' ');
    // id parent major:minor root mount-point options [optional…] - fstype source super-options
    const separator = fields.indexOf('-', 6);
    if (fields.length < 7 || separator < 0 || fields.length < separator + 3) continue;
    entries.push({
      root: unescapeOctal(fields[3]!),
      mountPoint: unescapeOctal(fields[4]!),
      fsType: fields[separator + 1]!,
      source: unescapeOctal(fields[separator + 2]!),
      superOptions: (fields[separator + 3] ?? '').split(',').filter(Boolean),
    });
  }
  return entries;
}

/** The cgroup hierarchies in mountinfo text. The first mount of a hierarchy wins. */
export function readCgroupMounts(mountinfoText: string): CgroupMounts {
  const v1 = new Map<string, CgroupMount>();
  let v2: CgroupMount | undefined;
  let systemd: CgroupMount | undefined;
  for (const entry of parseMountinfo(mountinfoText)) {
    if (entry.fsType === 'cgroup2') {
      v2 ??= { mountPoint: entry.mountPoint, root: entry.root, controllers: [] };
    } else if (entry.fsType === 'cgroup') {
      const controllers = entry.superOptions.filter((option) => V1_CONTROLLERS.includes(option));
      if (controllers.length === 0) {
        // A named hierarchy: box uses systemd's only (as runc does), others are left alone.
        if (entry.superOptions.includes('name=systemd'))
          systemd ??= { mountPoint: entry.mountPoint, root: entry.root, controllers: [] };
        continue;
      }
      const mount: CgroupMount = { mountPoint: entry.mountPoint, root: entry.root, controllers };
      for (const controller of controllers) if (!v1.has(controller)) v1.set(controller, mount);
    }
  }
  return { v1, v2, systemd };
}

/** The mode that a set of mounts amounts to; throws ECGROUPMODE when there is no cgroup at all. */
export function cgroupModeOf(mounts: CgroupMounts): CgroupMode {
  if (mounts.v1.size > 0) return mounts.v2 ? 'hybrid' : 'legacy';
  if (mounts.v2) return 'unified';
  throw new CgroupError('ECGROUPMODE', 'no cgroup hierarchy is mounted (neither cgroup nor cgroup2)');
}

/** Whether the host runs cgroup v2 only, v1 only, or both, judged from /proc/self/mountinfo text. */
export function detectCgroupMode(mountinfoText: string): CgroupMode {
  return cgroupModeOf(readCgroupMounts(mountinfoText));
}
