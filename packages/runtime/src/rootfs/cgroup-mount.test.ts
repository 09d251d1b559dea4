/**
 * Which host directories a container's /sys/fs/cgroup shows, decided on the real cgroup
 * filesystems of this machine (root; v1 controllers, name=systemd, and cgroup2 at
 * /sys/fs/cgroup/unified). The mounts themselves are checked from inside containers in
 * apps/e2e (cgroups.test.ts, oci-runtime.test.ts).
 */
import { randomBytes } from 'node:crypto';
import { rmSync, symlinkSync } from 'node:fs';
import { type CgroupManager, createCgroupManager } from '@box/cgroups';
import { afterEach, describe, expect, it } from 'vitest';
import { planCgroupMount } from './cgroup-mount.js';

let cgroup: CgroupManager | undefined;

afterEach(async () => {
  await cgroup?.destroy();
  cgroup = undefined;
});

async function made(): Promise<string> {
  const path = `box-test-mount-${randomBytes(4).toString('hex')}/c1`;
  cgroup = await createCgroupManager({ path });
  await cgroup.create();
  return path;
}

describe('planCgroupMount', () => {
  it("a v1 host: the container's cgroup in each hierarchy it is in, not the hybrid cgroup2 tree", async () => {
    const path = await made();
    const plan = planCgroupMount('/sys/fs/cgroup', `/${path}`);
    expect(plan.kind).toBe('v1');
    const names = plan.kind === 'v1' ? plan.hierarchies.map((h) => h.name).sort() : [];
    expect(names).toEqual([
      'blkio',
      'cpu',
      'cpuacct',
      'cpuset',
      'devices',
      'freezer',
      'memory',
      'pids',
      'systemd',
    ]);
    for (const h of plan.kind === 'v1' ? plan.hierarchies : [])
      expect(h.own).toBe(`/sys/fs/cgroup/${h.name}/${path}`);
    expect(planCgroupMount('/sys/fs/cgroup', undefined)).toEqual({ kind: 'v1', hierarchies: [], links: [] });
  });

  it("a host's link to a co-mounted hierarchy (cpu -> cpu,cpuacct) is a link, not the cgroup bound again", async () => {
    const path = await made();
    // Made in the host's /sys/fs/cgroup (a tmpfs) for the test: one to a hierarchy the container
    // is in, one to a name that is not shown, one leading elsewhere.
    const suffix = randomBytes(4).toString('hex');
    const links = {
      [`box-test-mem-${suffix}`]: 'memory',
      [`box-test-none-${suffix}`]: 'nothing',
      [`box-test-out-${suffix}`]: '/etc',
    };
    try {
      for (const [name, target] of Object.entries(links)) symlinkSync(target, `/sys/fs/cgroup/${name}`);
      const plan = planCgroupMount('/sys/fs/cgroup', path);
      expect(plan.kind === 'v1' && plan.links).toEqual([
        { name: `box-test-mem-${suffix}`, target: 'memory' },
      ]);
      const names = plan.kind === 'v1' ? plan.hierarchies.map((h) => h.name) : [];
      expect(names.some((name) => name.startsWith('box-test-'))).toBe(false);
    } finally {
      for (const name of Object.keys(links)) rmSync(`/sys/fs/cgroup/${name}`, { force: true });
    }
  });

  it("a v2 host (this machine's cgroup2 tree standing in for /sys/fs/cgroup): the container's own cgroup directory", async () => {
    const path = await made();
    expect(planCgroupMount('/sys/fs/cgroup/unified', path)).toEqual({
      kind: 'v2',
      own: `/sys/fs/cgroup/unified/${path}`,
    });
    // Never the tree's root: without a cgroup of its own, nothing (an empty tmpfs).
    expect(planCgroupMount('/sys/fs/cgroup/unified', undefined)).toEqual({ kind: 'v2', own: undefined });
    expect(planCgroupMount('/sys/fs/cgroup/unified', 'box-test-none/c9')).toEqual({
      kind: 'v2',
      own: undefined,
    });
    // Nor the tree's root or a place outside it through a path of "/", "." or "..".
    for (const bad of ['/', '', '.', `${path}/..`, '../..', '/./'])
      expect(planCgroupMount('/sys/fs/cgroup/unified', bad), bad).toEqual({ kind: 'v2', own: undefined });
    expect(planCgroupMount('/sys/fs/cgroup', '/..')).toEqual({ kind: 'v1', hierarchies: [], links: [] });
  });
});
