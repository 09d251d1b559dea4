import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { createCgroupManager } from '../create.js';
import { DEFAULT_DEVICE_RULES } from '../devices.js';
import type { CgroupManager } from '../manager.js';
import { parseCpus, parseSize } from '../size.js';
import { createFakeCgroupfs, type FakeCgroupfs, type FakeCgroupfsOptions } from '../testing.js';

let fake: FakeCgroupfs | undefined;
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  await fake?.cleanup();
  fake = undefined;
});

async function setup(
  options: Partial<FakeCgroupfsOptions> = {},
  path = 'box/c1',
): Promise<{ fake: FakeCgroupfs; manager: CgroupManager }> {
  fake = await createFakeCgroupfs({ layout: 'unified', ...options });
  const manager = await createCgroupManager({ path, mountinfo: fake.mountinfo, fs: fake.fs });
  await manager.create();
  return { fake, manager };
}

describe('v2 manager', () => {
  it('uses the v2 backend on a unified host and enables controllers down the path (fake cgroupfs)', async () => {
    const { fake, manager } = await setup();
    expect(manager.mode).toBe('unified');
    expect(manager.dirs).toEqual([fake.path('box/c1')]);
    expect(await fake.read('cgroup.subtree_control')).toBe('cpuset cpu io memory pids');
    expect(await fake.read('box/cgroup.subtree_control')).toBe('cpuset cpu io memory pids');
    expect(await fake.read('box/c1/cgroup.controllers')).toBe('cpuset cpu io memory pids');
    // The leaf keeps its subtree_control empty so that it may hold processes.
    expect(await fake.read('box/c1/cgroup.subtree_control')).toBe('');
  });

  it('leaves parents that already have the controllers alone (fake cgroupfs)', async () => {
    const { fake } = await setup();
    const writes: string[] = [];
    const write = fake.fs.writeFile;
    fake.fs.writeFile = async (path, data) => {
      writes.push(path);
      return write(path, data);
    };
    const second = await createCgroupManager({ path: 'box/c2', mountinfo: fake.mountinfo, fs: fake.fs });
    await second.create();
    expect(writes).toEqual([]);
  });

  it('writes limits as the kernel reads them (fake cgroupfs)', async () => {
    const { fake, manager } = await setup();
    const { quota, period } = parseCpus('0.5');
    await manager.apply({
      memory: { limit: parseSize('32m'), reservation: parseSize('16m'), swap: parseSize('96m') },
      cpu: { shares: 1024, quota, period, cpus: '0-1', mems: '0' },
      pids: { limit: 20 },
      blockIO: { weight: 500 },
    });
    expect(await fake.read('box/c1/memory.max')).toBe('33554432');
    expect(await fake.read('box/c1/memory.low')).toBe('16777216');
    expect(await fake.read('box/c1/memory.swap.max')).toBe('67108864'); // 96m - 32m
    expect(await fake.read('box/c1/cpu.weight')).toBe('39');
    expect(await fake.read('box/c1/cpu.max')).toBe('50000 100000');
    expect(await fake.read('box/c1/cpuset.cpus')).toBe('0-1');
    expect(await fake.read('box/c1/cpuset.mems')).toBe('0');
    expect(await fake.read('box/c1/pids.max')).toBe('20');
    expect(await fake.read('box/c1/io.weight')).toBe('4950');
  });

  it('writes max for unlimited values and keeps the other half of cpu.max (fake cgroupfs)', async () => {
    const { fake, manager } = await setup();
    await manager.apply({ cpu: { quota: 20_000, period: 50_000 } });
    await manager.update({ cpu: { period: 100_000 } });
    expect(await fake.read('box/c1/cpu.max')).toBe('20000 100000');
    await manager.update({ cpu: { quota: -1 } });
    expect(await fake.read('box/c1/cpu.max')).toBe('max');
    await manager.update({ memory: { limit: -1 }, pids: { limit: -1 } });
    expect(await fake.read('box/c1/memory.max')).toBe('max');
    expect(await fake.read('box/c1/memory.swap.max')).toBe('max');
    expect(await fake.read('box/c1/pids.max')).toBe('max');
    await manager.update({ memory: { limit: 1000, swap: 1000 } });
    expect(await fake.read('box/c1/memory.swap.max')).toBe('0');
  });

  it('attaches device rules as a BPF program (fake cgroupfs)', async () => {
    const { fake, manager } = await setup();
    await manager.apply({ pids: { limit: 5 }, devices: DEFAULT_DEVICE_RULES });
    const program = Buffer.from(await fake.read('box/c1/fake.device-programs'), 'hex');
    expect(program.length % 8).toBe(0);
    expect(program.readUInt8(program.length - 8)).toBe(0x95); // ends with exit
    expect(await fake.read('box/c1/pids.max')).toBe('5');
  });

  it('names a controller the host does not offer (fake cgroupfs)', async () => {
    const { fake, manager } = await setup({ controllers: ['cpu', 'memory', 'pids'] });
    const error = await manager
      .apply({ pids: { limit: 5 }, blockIO: { weight: 100 } })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ECGROUPCONTROLLER', controller: 'io' });
    expect((error as Error).message).toMatch(/"io" is not available/);
    expect(await fake.read('box/c1/pids.max')).toBe('max');
    await expect(manager.apply({ cpu: { cpus: '0' } })).rejects.toMatchObject({ controller: 'cpuset' });
  });

  it('refuses a swap limit clearly when swap accounting is off (fake cgroupfs)', async () => {
    const { manager } = await setup({ swapAccounting: false });
    await expect(manager.apply({ memory: { limit: 100, swap: 200 } })).rejects.toMatchObject({
      code: 'ECGROUPUNSUPPORTED',
      controller: 'memory',
    });
    await manager.apply({ memory: { limit: -1 } }); // unlimited needs no swap file
  });

  it('freezes and thaws through cgroup.freeze and cgroup.events (fake cgroupfs)', async () => {
    const { fake, manager } = await setup();
    await manager.freeze();
    expect(await fake.read('box/c1/cgroup.freeze')).toBe('1');
    expect(await fake.read('box/c1/cgroup.events')).toMatch(/^frozen 1$/m);
    await manager.thaw();
    expect(await fake.read('box/c1/cgroup.events')).toMatch(/^frozen 0$/m);
  });

  it('kills through cgroup.kill when there is one (fake cgroupfs)', async () => {
    const { fake, manager } = await setup();
    await manager.addProcess(4242);
    await manager.killAll();
    expect(await manager.pids()).toEqual([]);
    expect(await fake.exists('box/c1/cgroup.kill')).toBe(true);
  });

  it('signals each process when cgroup.kill is missing (fake cgroupfs)', async () => {
    const { manager } = await setup({ cgroupKill: false });
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    children.push(child);
    await manager.addProcess(child.pid!);
    expect(await manager.pids()).toEqual([child.pid]);
    const exit = once(child, 'exit');
    await manager.killAll('SIGKILL');
    expect((await exit)[1]).toBe('SIGKILL');
  });

  it('reads stats and the OOM kill counter (fake cgroupfs)', async () => {
    const { fake, manager } = await setup();
    await manager.apply({ memory: { limit: 1_000_000 } });
    await fake.write('box/c1/memory.current', '4096\n');
    await fake.write('box/c1/memory.peak', '8192\n');
    await fake.write('box/c1/cpu.stat', 'usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n');
    await fake.write('box/c1/pids.current', '2\n');
    expect(await manager.stats()).toEqual({
      memory: { usage: 4096, peak: 8192, limit: 1_000_000 },
      cpu: { usageNs: 1_500_000 },
      pids: { current: 2, limit: null },
    });
    expect(await manager.oomKilled()).toBe(false);
    await fake.write('box/c1/memory.events', 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n');
    expect(await manager.oomKilled()).toBe(true);
  });

  it('destroys child cgroups deepest first and leaves nothing (fake cgroupfs)', async () => {
    const { fake, manager } = await setup();
    await fake.fs.mkdir(fake.path('box/c1/a'));
    await fake.fs.mkdir(fake.path('box/c1/a/b'));
    await manager.destroy();
    // The parent `box` goes with its last container.
    expect(await fake.listDirs()).toEqual([]);
  });

  it('with keepParents, removes only the cgroup, never its empty parents, as runc (fake cgroupfs)', async () => {
    fake = await createFakeCgroupfs({ layout: 'unified' });
    const manager = await createCgroupManager({
      path: 'kubepods/pod1/c1',
      mountinfo: fake.mountinfo,
      fs: fake.fs,
      keepParents: true,
    });
    await manager.create();
    await manager.destroy();
    expect(await fake.listDirs()).toEqual(['kubepods', 'kubepods/pod1']);
  });

  it('keeps the shared parent while another container uses it (fake cgroupfs)', async () => {
    const { fake, manager } = await setup();
    await fake.fs.mkdir(fake.path('box/c2'));
    await manager.destroy();
    expect(await fake.listDirs()).toEqual(['box', 'box/c2']);
  });

  it('finds a v2 root directory by its cgroup.controllers (fake cgroupfs)', async () => {
    const { fake } = await setup();
    const manager = await createCgroupManager({ path: 'box/c9', root: fake.root, fs: fake.fs });
    expect(manager.mode).toBe('unified');
    expect(manager.dirs).toEqual([fake.path('box/c9')]);
  });
});
