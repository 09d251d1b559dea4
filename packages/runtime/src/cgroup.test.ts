/**
 * The container cgroup's teardown on the real kernel (root, cgroupfs): each test makes
 * `box-test-<random>` at the root of every hierarchy and removes it again, even when an
 * assertion fails.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { type CgroupManager, createCgroupManager } from '@box/cgroups';
import { afterEach, describe, expect, it } from 'vitest';
import { removeContainerCgroup } from './cgroup.js';

describe('removeContainerCgroup (real cgroupfs)', () => {
  let cgroup: CgroupManager | undefined;
  let child: ChildProcess | undefined;

  async function make(): Promise<CgroupManager> {
    cgroup = await createCgroupManager({ path: `box-test-${randomBytes(6).toString('hex')}` });
    await cgroup.create();
    return cgroup;
  }

  const left = () => (cgroup?.dirs ?? []).filter((dir) => existsSync(dir));

  afterEach(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    child = undefined;
    await cgroup?.destroy().catch(() => {});
    if (cgroup?.path.startsWith('box-test-')) for (const dir of left().reverse()) rmdirSync(dir);
    expect(left()).toEqual([]);
    cgroup = undefined;
  });

  it('removes an empty cgroup and the child cgroups a container made in it', async () => {
    const made = await make();
    // A child cgroup (as systemd in a container makes them): the kernel refuses to remove its
    // parent first, so the removal has to find it.
    const sub = join(made.dirs[0]!, 'sub');
    mkdirSync(sub);
    expect(await removeContainerCgroup(made)).toEqual({ oomKilled: false });
    expect(existsSync(sub)).toBe(false);
    expect(left()).toEqual([]);
  });

  it('kills what still runs in the cgroup, then removes it', async () => {
    const made = await make();
    child = spawn('sleep', ['30'], { stdio: 'ignore' });
    await once(child, 'spawn');
    await made.addProcess(child.pid!);
    const exit = once(child, 'exit');
    expect(await removeContainerCgroup(made)).toEqual({ oomKilled: false });
    expect((await exit)[1]).toBe('SIGKILL');
    expect(left()).toEqual([]);
  });
});
