import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultSpec } from '../spec.js';
import { specTemplate } from './features.js';

const RUNC_SPEC = join(import.meta.dirname, 'schema/fixtures/runc-1.1.5-spec.json');

describe('specTemplate (box-runtime spec)', () => {
  it("mounts what `runc spec` mounts, /sys/fs/cgroup included, with runc's options", async () => {
    const runc = JSON.parse(readFileSync(RUNC_SPEC, 'utf8')) as {
      mounts: { destination: string; type: string; options?: string[] }[];
    };
    const ours = (await specTemplate()).mounts ?? [];
    expect(ours.map((m) => m.destination)).toEqual(runc.mounts.map((m) => m.destination));
    const cgroup = (mounts: { destination: string; type?: string; options?: string[] }[]) =>
      mounts.find((m) => m.destination === '/sys/fs/cgroup');
    expect(cgroup(ours)).toEqual(cgroup(runc.mounts));
  });
});

describe('defaultSpec', () => {
  it("mounts the container's cgroup read-only at /sys/fs/cgroup when it has one (as docker)", () => {
    const withCgroup = defaultSpec({ rootfs: '/r', cgroupsPath: 'box/c1' }).mounts ?? [];
    expect(withCgroup.find((m) => m.destination === '/sys/fs/cgroup')).toMatchObject({
      type: 'cgroup',
      options: expect.arrayContaining(['ro', 'nosuid', 'noexec', 'nodev']),
    });
    // A rootless container without a cgroup: nothing to show.
    const without = defaultSpec({ rootfs: '/r' }).mounts ?? [];
    expect(without.some((m) => m.destination === '/sys/fs/cgroup')).toBe(false);
  });
});
