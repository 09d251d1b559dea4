/**
 * Runs against the real kernel: needs root and a v1 memory hierarchy (this project's dev machines
 * are hybrid). Each test makes `box-test-<random>` at the root of every v1 hierarchy, beside the
 * session's own cgroups, and removes it again even when an assertion fails.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCgroupManager } from './create.js';
import { readCgroupMounts } from './detect.js';
import { DEFAULT_DEVICE_RULES } from './devices.js';
import type { CgroupManager } from './manager.js';
import { parseCpus, parseSize } from './size.js';

const canRun = process.getuid?.() === 0 && existsSync('/sys/fs/cgroup/memory/memory.limit_in_bytes');

function hierarchyRoots(): string[] {
  const mounts = readCgroupMounts(readFileSync('/proc/self/mountinfo', 'utf8'));
  const roots = new Set([...mounts.v1.values()].map((mount) => mount.mountPoint));
  if (mounts.v2) roots.add(mounts.v2.mountPoint);
  if (mounts.systemd) roots.add(mounts.systemd.mountPoint);
  return [...roots];
}

function leftovers(path: string): string[] {
  return hierarchyRoots()
    .map((root) => join(root, path))
    .filter((dir) => existsSync(dir));
}

describe('v1 manager on the real kernel', () => {
  // Not run as root, or no v1 memory hierarchy: fails here, never skips.
  beforeAll(() => {
    if (!canRun) throw new Error('needs root and the cgroup v1 hierarchies at /sys/fs/cgroup');
  });

  let path = '';
  let manager: CgroupManager | undefined;
  let child: ChildProcess | undefined;

  async function start(): Promise<{ manager: CgroupManager; child: ChildProcess & { pid: number } }> {
    path = `box-test-${randomBytes(6).toString('hex')}`;
    manager = await createCgroupManager({ path });
    await manager.create();
    child = spawn('sleep', ['30'], { stdio: 'ignore' });
    await once(child, 'spawn');
    return { manager, child: child as ChildProcess & { pid: number } };
  }

  afterEach(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exit = once(child, 'exit');
      child.kill('SIGKILL');
      await exit;
    }
    await manager?.destroy().catch(() => {});
    manager = undefined;
    child = undefined;
    if (!path.startsWith('box-test-')) return;
    // Belt and braces: only ever this test's own directory, in each hierarchy.
    for (const dir of leftovers(path)) rmdirSync(dir);
    expect(leftovers(path)).toEqual([]);
    path = '';
  });

  it("puts the process in its cgroup in every hierarchy of /proc/PID/cgroup: name=systemd's and cgroup2's too", async () => {
    // This machine mounts both, as hybrid systemd hosts do; a process left in its caller's cgroup
    // there belongs, for systemd, to its caller's unit.
    const mounts = readCgroupMounts(readFileSync('/proc/self/mountinfo', 'utf8'));
    expect(mounts.systemd?.mountPoint).toBe('/sys/fs/cgroup/systemd');
    expect(mounts.v2?.mountPoint).toBe('/sys/fs/cgroup/unified');
    const { manager, child } = await start();
    await manager.addProcess(child.pid);
    const lines = readFileSync(`/proc/${child.pid}/cgroup`, 'utf8').trim().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(10);
    for (const line of lines) expect(line, line).toMatch(new RegExp(`^\\d+:[^:]*:/${path}$`));
    expect(lines.some((line) => line.includes(':name=systemd:'))).toBe(true);
    expect(lines.some((line) => line.startsWith('0::'))).toBe(true);
    child.kill('SIGKILL');
    await once(child, 'exit');
    await manager.destroy();
    expect(leftovers(path)).toEqual([]);
  });

  it('limits memory, pids and CPU, reports stats, kills and removes everything', async () => {
    const { manager, child } = await start();
    expect(manager.mode).not.toBe('unified');
    await manager.apply({
      memory: { limit: parseSize('32m') },
      pids: { limit: 20 },
      cpu: parseCpus('0.5'),
    });
    await manager.addProcess(child.pid);

    const dir = (controller: string, file: string) => join('/sys/fs/cgroup', controller, path, file);
    expect(readFileSync(dir('memory', 'memory.limit_in_bytes'), 'utf8').trim()).toBe('33554432');
    expect(readFileSync(dir('cpu', 'cpu.cfs_quota_us'), 'utf8').trim()).toBe('50000');
    expect(readFileSync(dir('cpu', 'cpu.cfs_period_us'), 'utf8').trim()).toBe('100000');
    expect(readFileSync(dir('pids', 'pids.max'), 'utf8').trim()).toBe('20');
    expect(readFileSync(dir('memory', 'cgroup.procs'), 'utf8').trim()).toBe(String(child.pid));
    expect(await manager.pids()).toEqual([child.pid]);

    const stats = await manager.stats();
    expect(stats.memory?.limit).toBe(33_554_432);
    expect(stats.memory?.usage).toBeGreaterThanOrEqual(0);
    expect(stats.memory?.peak).toBeGreaterThanOrEqual(stats.memory?.usage ?? 0);
    expect(stats.pids).toEqual({ current: 1, limit: 20 });
    expect(stats.cpu?.usageNs).toBeGreaterThanOrEqual(0);
    expect(await manager.oomKilled()).toBe(false);

    const exit = once(child, 'exit');
    await manager.killAll();
    expect((await exit)[1]).toBe('SIGKILL');
    await manager.destroy();
    expect(leftovers(path)).toEqual([]);
  });

  it('applies device rules, a block I/O weight and a cpuset, freezes, thaws and signals', async () => {
    const { manager, child } = await start();
    const cpus = readFileSync('/sys/fs/cgroup/cpuset/cpuset.cpus', 'utf8').trim();
    await manager.apply({
      devices: DEFAULT_DEVICE_RULES,
      blockIO: { weight: 300 },
      cpu: { cpus, shares: 512 },
    });
    await manager.addProcess(child.pid);
    const devices = readFileSync(join('/sys/fs/cgroup/devices', path, 'devices.list'), 'utf8');
    expect(devices).toContain('c 1:3 rwm');
    expect(devices).toContain('c 136:* rwm');
    expect(devices).not.toContain('a *:* rwm');

    await manager.freeze();
    expect(readFileSync(join('/sys/fs/cgroup/freezer', path, 'freezer.state'), 'utf8').trim()).toBe('FROZEN');
    await manager.thaw();
    expect(readFileSync(join('/sys/fs/cgroup/freezer', path, 'freezer.state'), 'utf8').trim()).toBe('THAWED');

    const exit = once(child, 'exit');
    await manager.killAll('SIGTERM');
    expect((await exit)[1]).toBe('SIGTERM');
    await manager.destroy();
    expect(leftovers(path)).toEqual([]);
  });
  it('destroy with one attempt: refused at once while a task is in every hierarchy (each kept), then removes it and its child cgroups', async () => {
    const { manager, child } = await start();
    await manager.addProcess(child.pid);
    await expect(manager.destroy({ attempts: 1 })).rejects.toMatchObject({
      code: 'ECGROUPBUSY',
      message: expect.stringContaining('after 1 attempts'),
    });
    for (const controller of ['memory', 'pids', 'freezer'])
      expect(existsSync(join('/sys/fs/cgroup', controller, path))).toBe(true);
    expect(await manager.pids()).toEqual([child.pid]);

    const exit = once(child, 'exit');
    await manager.killAll();
    await exit;
    // The kernel refuses to remove a cgroup before its child cgroups (EBUSY): they are found then.
    mkdirSync(join('/sys/fs/cgroup/memory', path, 'sub', 'deeper'), { recursive: true });
    await manager.destroy({ attempts: 1 });
    expect(leftovers(path)).toEqual([]);
  });

  it('a cgroup left in some hierarchies only (a removal killed half way): its processes are still found, killed and the rest removed', async () => {
    const { manager, child } = await start();
    await manager.addProcess(child.pid);
    // What a SIGKILLed destroy leaves: the cgroup already gone from cpuset and freezer, the
    // process still in the other hierarchies.
    for (const controller of ['cpuset', 'freezer']) {
      const root = join('/sys/fs/cgroup', controller);
      writeFileSync(join(root, 'cgroup.procs'), String(child.pid));
      rmdirSync(join(root, path));
    }
    expect(existsSync(join('/sys/fs/cgroup/cpuset', path))).toBe(false);
    expect(existsSync(join('/sys/fs/cgroup/memory', path))).toBe(true);

    expect(await manager.pids()).toEqual([child.pid]);
    const exit = once(child, 'exit');
    await manager.killAll();
    expect((await exit)[1]).toBe('SIGKILL');
    expect(await manager.pids()).toEqual([]);
    await manager.destroy();
    expect(leftovers(path)).toEqual([]);
  });
});
