import { describe, expect, it } from 'vitest';
import { detectCgroupMode, parseMountinfo, readCgroupMounts } from './detect.js';

// This machine: v1 controllers each in their own hierarchy, plus cgroup2 at /sys/fs/cgroup/unified.
const HYBRID = `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;

// A current systemd host: only cgroup2, at /sys/fs/cgroup.
const UNIFIED = `24 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro
25 24 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
28 25 0:25 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`;

// An older host (CentOS 7 style): v1 only, cpu and cpuacct co-mounted, a systemd named hierarchy.
const LEGACY = `20 1 253:0 / / rw,relatime shared:1 - xfs /dev/mapper/root rw
23 18 0:19 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:6 - tmpfs tmpfs ro,mode=755
24 23 0:20 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:7 - cgroup cgroup rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd
27 23 0:23 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct
28 23 0:24 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,memory
29 23 0:25 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,cpuset,clone_children
30 23 0:26 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,pids
`;

describe('detectCgroupMode', () => {
  it('sees v1 controllers plus a cgroup2 mount as hybrid (this machine)', () => {
    expect(detectCgroupMode(HYBRID)).toBe('hybrid');
  });
  it('sees cgroup2 alone as unified', () => {
    expect(detectCgroupMode(UNIFIED)).toBe('unified');
  });
  it('sees v1 alone as legacy', () => {
    expect(detectCgroupMode(LEGACY)).toBe('legacy');
  });
  it('does not count a named hierarchy (name=systemd) as v1 controllers', () => {
    const text = `${UNIFIED}40 25 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n`;
    expect(detectCgroupMode(text)).toBe('unified');
  });
  it('throws ECGROUPMODE when no cgroup filesystem is mounted', () => {
    expect(() => detectCgroupMode('22 1 8:1 / / rw - ext4 /dev/vda1 rw\n')).toThrow(
      expect.objectContaining({ code: 'ECGROUPMODE' }),
    );
  });
});

describe('readCgroupMounts', () => {
  it('maps each v1 controller to its mount point and finds the v2 mount', () => {
    const mounts = readCgroupMounts(HYBRID);
    expect([...mounts.v1.keys()].sort()).toEqual(
      ['blkio', 'cpu', 'cpuacct', 'cpuset', 'devices', 'freezer', 'memory', 'pids'].sort(),
    );
    expect(mounts.v1.get('memory')).toEqual({
      mountPoint: '/sys/fs/cgroup/memory',
      root: '/',
      controllers: ['memory'],
    });
    expect(mounts.v2?.mountPoint).toBe('/sys/fs/cgroup/unified');
  });

  it('shares one mount between co-mounted controllers and skips mount flags', () => {
    const mounts = readCgroupMounts(LEGACY);
    expect(mounts.v1.get('cpu')).toBe(mounts.v1.get('cpuacct'));
    expect(mounts.v1.get('cpu')?.mountPoint).toBe('/sys/fs/cgroup/cpu,cpuacct');
    expect(mounts.v1.get('cpuset')?.controllers).toEqual(['cpuset']);
    expect(mounts.v1.has('systemd')).toBe(false);
    expect(mounts.v2).toBeUndefined();
  });

  it("finds v1's name=systemd hierarchy, and no other named one", () => {
    expect(readCgroupMounts(LEGACY).systemd).toEqual({
      mountPoint: '/sys/fs/cgroup/systemd',
      root: '/',
      controllers: [],
    });
    expect(readCgroupMounts(HYBRID).systemd?.mountPoint).toBe('/sys/fs/cgroup/systemd');
    const other = HYBRID.replace('name=systemd', 'name=elogind');
    expect(readCgroupMounts(other).systemd).toBeUndefined();
    expect(readCgroupMounts(UNIFIED).systemd).toBeUndefined();
  });

  it('keeps the first mount of a hierarchy and its root inside the filesystem', () => {
    const text = `${UNIFIED}99 28 0:25 /docker/abc /run/x rw - cgroup2 cgroup2 rw\n`;
    expect(readCgroupMounts(text).v2).toEqual({ mountPoint: '/sys/fs/cgroup', root: '/', controllers: [] });
  });
});

describe('parseMountinfo', () => {
  it('handles optional fields and octal escapes', () => {
    const [entry] = parseMountinfo(
      '36 35 98:0 /a\\040b /mnt/with\\040space rw,noatime master:1 shared:2 - cgroup2 none rw,nsdelegate\n',
    );
    expect(entry).toEqual({
      root: '/a b',
      mountPoint: '/mnt/with space',
      fsType: 'cgroup2',
      source: 'none',
      superOptions: ['rw', 'nsdelegate'],
    });
  });
  it('skips lines of the wrong shape', () => {
    expect(parseMountinfo('garbage\n\n1 2 3\n')).toEqual([]);
  });
});
