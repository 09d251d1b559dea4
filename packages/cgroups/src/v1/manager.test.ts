import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { createCgroupManager } from '../create.js';
import { DEFAULT_DEVICE_RULES } from '../devices.js';
import type { CgroupManager } from '../manager.js';
import { parseCpus, parseSize } from '../size.js';
import { createFakeCgroupfs, type FakeCgroupfs, type FakeCgroupfsOptions } from '../testing.js';

const HIERARCHIES = ['blkio', 'cpu', 'cpuacct', 'cpuset', 'devices', 'freezer', 'memory', 'pids'];

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
  fake = await createFakeCgroupfs({ layout: 'hybrid', ...options });
  const manager = await createCgroupManager({ path, mountinfo: fake.mountinfo, fs: fake.fs });
  await manager.create();
  return { fake, manager };
}

function sleeper(): ChildProcess & { pid: number } {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  children.push(child);
  return child as ChildProcess & { pid: number };
}

describe('v1 manager', () => {
  it('uses the v1 backend on a hybrid host and creates the cgroup in every hierarchy (fake cgroupfs)', async () => {
    const { fake, manager } = await setup();
    expect(manager.mode).toBe('hybrid');
    expect(manager.path).toBe('box/c1');
    // The hybrid host's cgroup2 tree too, as runc does: no limits there, only where the
    // process belongs (systemd reads it).
    expect([...manager.dirs].sort()).toEqual([...HIERARCHIES, 'unified'].map((h) => fake.path(h, 'box/c1')));
    for (const h of [...HIERARCHIES, 'unified'])
      expect(await fake.exists(h, 'box/c1', 'cgroup.procs'), h).toBe(true);
    await manager.addProcess(4242);
    expect(await fake.read('unified', 'box/c1', 'cgroup.procs')).toBe('4242');
    for (const h of [...HIERARCHIES, 'unified']) await fake.write(`${h}/box/c1/cgroup.procs`, '');
    await manager.destroy();
    expect(await fake.exists('unified', 'box')).toBe(false);
  });

  it("joins v1's name=systemd hierarchy, and leaves other named ones alone (fake cgroupfs)", async () => {
    const { fake, manager } = await setup({
      layout: 'legacy',
      controllers: ['cpu', 'memory', 'name=systemd', 'name=other'],
    });
    expect([...manager.dirs].sort()).toEqual(
      ['cpu', 'memory', 'name=systemd'].map((h) => fake.path(h, 'box/c1')),
    );
    expect(await fake.exists('name=other', 'box')).toBe(false);
    await manager.addProcess(4242);
    expect(await fake.read('name=systemd', 'box/c1', 'cgroup.procs')).toBe('4242');
    expect(await manager.pids()).toEqual([4242]);
    // Limits are written only where their controller is.
    await manager.apply({ memory: { limit: parseSize('32m') } });
    await fake.write('name=systemd/box/c1/cgroup.procs', '');
    await fake.write('cpu/box/c1/cgroup.procs', '');
    await fake.write('memory/box/c1/cgroup.procs', '');
    await manager.destroy();
    expect(await fake.exists('name=systemd', 'box')).toBe(false);
  });

  it('joins a tracker on a best-effort basis; the container list comes from the controllers only (fake cgroupfs)', async () => {
    fake = await createFakeCgroupfs({ layout: 'hybrid', controllers: ['memory', 'pids', 'name=systemd'] });
    const f = fake;
    const denied = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
    // name=systemd read-only to box here (a nested host): the container is made without it.
    const fs = {
      ...f.fs,
      mkdir: (path: string) => (path.includes('name=systemd') ? Promise.reject(denied) : f.fs.mkdir(path)),
    };
    const manager = await createCgroupManager({ path: 'box/c1', mountinfo: f.mountinfo, fs });
    await manager.create();
    expect(await f.exists('name=systemd', 'box')).toBe(false);
    expect(await f.exists('unified', 'box/c1')).toBe(true);
    await manager.addProcess(4242);
    expect(await f.read('memory', 'box/c1', 'cgroup.procs')).toBe('4242');
    expect(await f.read('unified', 'box/c1', 'cgroup.procs')).toBe('4242');
    // A process only in the tracker's cgroup (there, a path may name a unit's cgroup) is not
    // one of the container's.
    await f.fs.mkdir(f.path('unified', 'box/c1/other'));
    await f.write('unified/box/c1/other/cgroup.procs', '5151');
    expect(await manager.pids()).toEqual([4242]);
    await f.write('unified/box/c1/other/cgroup.procs', '');
    for (const h of ['memory', 'pids', 'unified']) await f.write(`${h}/box/c1/cgroup.procs`, '');
    await manager.destroy();
    expect(await f.exists('unified', 'box')).toBe(false);
  });

  it('a failed create leaves nothing in the trackers either (fake cgroupfs)', async () => {
    fake = await createFakeCgroupfs({ layout: 'hybrid', controllers: ['memory', 'pids', 'name=systemd'] });
    const f = fake;
    const full = Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    const fs = {
      ...f.fs,
      mkdir: (path: string) => (path.endsWith('pids/box/c1') ? Promise.reject(full) : f.fs.mkdir(path)),
    };
    const manager = await createCgroupManager({ path: 'box/c1', mountinfo: f.mountinfo, fs });
    await expect(manager.create()).rejects.toMatchObject({ code: 'ECGROUPIO' });
    for (const h of ['memory', 'pids', 'name=systemd', 'unified'])
      expect(await f.exists(h, 'box'), h).toBe(false);
  });

  it('execs into a container made before box joined the trackers: their cgroups missing, the process still joins the rest (fake cgroupfs)', async () => {
    fake = await createFakeCgroupfs({ layout: 'hybrid', controllers: ['memory', 'name=systemd'] });
    const older = await createCgroupManager({ path: 'box/c1', mountinfo: fake.mountinfo, fs: fake.fs });
    await older.create();
    await fake.fs.rmdir(fake.path('name=systemd', 'box/c1'));
    await fake.fs.rmdir(fake.path('unified', 'box/c1'));
    const manager = await createCgroupManager({ path: 'box/c1', mountinfo: fake.mountinfo, fs: fake.fs });
    await manager.addProcess(4242);
    expect(await fake.read('memory', 'box/c1', 'cgroup.procs')).toBe('4242');
    expect(await manager.pids()).toEqual([4242]);
  });

  it('does not join a tracker mounted as a subtree: the path would land inside it', () => {
    const mountinfo = `20 1 8:1 / / rw - ext4 /dev/sda1 rw
30 20 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw
31 30 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
32 30 0:28 /system.slice/x.service /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd
33 30 0:29 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
`;
    return createCgroupManager({ path: 'box/c1', mountinfo }).then((manager) =>
      expect(manager.dirs).toEqual(['/sys/fs/cgroup/memory/box/c1', '/sys/fs/cgroup/unified/box/c1']),
    );
  });

  it('copies cpuset.cpus and cpuset.mems from the parent into every new level (fake cgroupfs)', async () => {
    const { fake, manager } = await setup({ cpus: '0-5', mems: '0-1' }, 'box/pod/c1');
    for (const level of ['box', 'box/pod', 'box/pod/c1']) {
      expect(await fake.read('cpuset', level, 'cpuset.cpus'), level).toBe('0-5');
      expect(await fake.read('cpuset', level, 'cpuset.mems'), level).toBe('0-1');
    }
    // So adding a task does not fail with ENOSPC, as it does in an empty cpuset:
    await manager.addProcess(4242);
    await fake.fs.mkdir(fake.path('cpuset', 'box', 'raw'));
    await expect(
      fake.fs.writeFile(fake.path('cpuset', 'box', 'raw', 'cgroup.procs'), '4242'),
    ).rejects.toMatchObject({ code: 'ENOSPC' });
  });

  it('writes limits as the kernel reads them (fake cgroupfs)', async () => {
    const { fake, manager } = await setup();
    const { quota, period } = parseCpus('0.5');
    await manager.apply({
      memory: { limit: parseSize('32m'), reservation: parseSize('16m'), swap: parseSize('64m') },
      cpu: { shares: 512, quota, period, cpus: '1-2', mems: '0' },
      pids: { limit: 20 },
      blockIO: { weight: 300 },
    });
    expect(await fake.read('memory/box/c1/memory.limit_in_bytes')).toBe('33554432');
    expect(await fake.read('memory/box/c1/memory.soft_limit_in_bytes')).toBe('16777216');
    expect(await fake.read('memory/box/c1/memory.memsw.limit_in_bytes')).toBe('67108864');
    expect(await fake.read('cpu/box/c1/cpu.shares')).toBe('512');
    expect(await fake.read('cpu/box/c1/cpu.cfs_quota_us')).toBe('50000');
    expect(await fake.read('cpu/box/c1/cpu.cfs_period_us')).toBe('100000');
    expect(await fake.read('cpuset/box/c1/cpuset.cpus')).toBe('1-2');
    expect(await fake.read('cpuset/box/c1/cpuset.mems')).toBe('0');
    expect(await fake.read('pids/box/c1/pids.max')).toBe('20');
    expect(await fake.read('blkio/box/c1/blkio.weight')).toBe('300');
  });

  it('writes unlimited values as -1 and max (fake cgroupfs)', async () => {
    const { fake, manager } = await setup();
    await manager.apply({ memory: { limit: parseSize('32m'), swap: parseSize('64m') }, pids: { limit: 5 } });
    await manager.update({ memory: { limit: -1 }, cpu: { quota: -1 }, pids: { limit: 0 } });
    expect(await fake.read('memory/box/c1/memory.limit_in_bytes')).toBe('-1');
    expect(await fake.read('memory/box/c1/memory.memsw.limit_in_bytes')).toBe('-1');
    expect(await fake.read('cpu/box/c1/cpu.cfs_quota_us')).toBe('-1');
    expect(await fake.read('pids/box/c1/pids.max')).toBe('max');
  });

  it('orders the memory and memsw writes so that limit <= memsw always holds (fake cgroupfs)', async () => {
    const { fake, manager } = await setup();
    const writes: string[] = [];
    const write = fake.fs.writeFile;
    fake.fs.writeFile = async (path, data) => {
      if (path.includes('memory.')) writes.push(`${path.split('/').pop()}=${data}`);
      return write(path, data);
    };
    await manager.apply({ memory: { limit: 100, swap: 200 } }); // current limit is unlimited: shrinking
    await manager.update({ memory: { limit: 300, swap: 400 } }); // growing past memsw: memsw first
    await manager.update({ memory: { limit: 50, swap: 60 } }); // shrinking: limit first
    expect(writes).toEqual([
      'memory.limit_in_bytes=100',
      'memory.memsw.limit_in_bytes=200',
      'memory.memsw.limit_in_bytes=400',
      'memory.limit_in_bytes=300',
      'memory.limit_in_bytes=50',
      'memory.memsw.limit_in_bytes=60',
    ]);
  });

  it('refuses a swap limit clearly when swap accounting is off (fake cgroupfs)', async () => {
    const { fake, manager } = await setup({ swapAccounting: false });
    const error = await manager.apply({ memory: { limit: 100, swap: 200 } }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ECGROUPUNSUPPORTED', controller: 'memory' });
    expect(String(error)).toMatch(/memory\.memsw\.limit_in_bytes does not exist/);
    // Memory alone still works.
    await manager.apply({ memory: { limit: 100 } });
    expect(await fake.read('memory/box/c1/memory.limit_in_bytes')).toBe('100');
  });

  it('names a missing controller and writes nothing (fake cgroupfs)', async () => {
    const { fake, manager } = await setup({ controllers: ['cpu', 'cpuacct', 'cpuset', 'memory', 'freezer'] });
    const error = await manager
      .apply({ memory: { limit: 100 }, pids: { limit: 10 } })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'CgroupError', code: 'ECGROUPCONTROLLER', controller: 'pids' });
    expect(String(error)).toMatch(/"pids" is not available/);
    expect(await fake.read('memory/box/c1/memory.limit_in_bytes')).toBe('9223372036854771712');
    await expect(manager.apply({ devices: DEFAULT_DEVICE_RULES })).rejects.toMatchObject({
      controller: 'devices',
    });
  });

  it('rejects invalid values before writing anything (fake cgroupfs)', async () => {
    const { fake, manager } = await setup();
    for (const resources of [
      { memory: { limit: 0 } },
      { memory: { limit: 100, swap: 50 } },
      { cpu: { shares: 1 } },
      { cpu: { quota: 10 } },
      { cpu: { period: 5_000_000 } },
      { blockIO: { weight: 5 } },
      { devices: [{ allow: true, type: 'x' as 'c' }] },
      { devices: [{ allow: true, type: 'c' as const, access: 'rwx' }] },
    ]) {
      await expect(
        manager.apply({ pids: { limit: 3 }, ...resources }),
        JSON.stringify(resources),
      ).rejects.toMatchObject({
        code: 'ECGROUPVALUE',
      });
    }
    expect(await fake.read('pids/box/c1/pids.max')).toBe('max');
  });

  it('checks cpuset values against the parent (fake cgroupfs)', async () => {
    const { manager } = await setup({ cpus: '0-1' });
    await expect(manager.apply({ cpu: { cpus: '0-2' } })).rejects.toThrow(
      /names 2, which is not available \(available: 0-1\)/,
    );
  });

  it('falls back to blkio.bfq.weight, and says so when no weight file exists (fake cgroupfs)', async () => {
    const { fake, manager } = await setup({ blkioWeightFile: 'blkio.bfq.weight' });
    await manager.apply({ blockIO: { weight: 700 } });
    expect(await fake.read('blkio/box/c1/blkio.bfq.weight')).toBe('700');
    await fake.cleanup();

    const other = await setup({ blkioWeightFile: null });
    await expect(other.manager.apply({ blockIO: { weight: 700 } })).rejects.toMatchObject({
      code: 'ECGROUPUNSUPPORTED',
      controller: 'blkio',
    });
  });

  it("denies all devices, then allows docker's default list (fake cgroupfs)", async () => {
    const { fake, manager } = await setup();
    expect(await fake.read('devices/box/c1/devices.list')).toBe('a *:* rwm');
    await manager.apply({ devices: DEFAULT_DEVICE_RULES });
    expect((await fake.read('devices/box/c1/devices.list')).split('\n')).toEqual([
      'c *:* m',
      'b *:* m',
      'c 1:3 rwm',
      'c 1:5 rwm',
      'c 1:7 rwm',
      'c 1:8 rwm',
      'c 1:9 rwm',
      'c 5:0 rwm',
      'c 5:1 rwm',
      'c 5:2 rwm',
      'c 136:* rwm',
      'c 10:200 rwm',
    ]);
    await manager.update({
      devices: [...DEFAULT_DEVICE_RULES, { allow: false, type: 'c', major: 10, minor: 200, access: 'rwm' }],
    });
    expect(await fake.read('devices/box/c1/devices.list')).not.toMatch(/10:200/);
  });

  it('freezes and thaws through freezer.state (fake cgroupfs)', async () => {
    const { fake, manager } = await setup();
    await manager.freeze();
    expect(await fake.read('freezer/box/c1/freezer.state')).toBe('FROZEN');
    await manager.thaw();
    expect(await fake.read('freezer/box/c1/freezer.state')).toBe('THAWED');
  });

  it('adds processes in every hierarchy and lists them with child cgroups (fake cgroupfs)', async () => {
    const { fake, manager } = await setup();
    await manager.addProcess(101);
    await manager.addProcess(102);
    for (const h of HIERARCHIES) expect(await fake.read(h, 'box/c1/cgroup.procs'), h).toBe('101\n102');
    await fake.fs.mkdir(fake.path('memory', 'box/c1/nested'));
    await fake.fs.writeFile(fake.path('memory', 'box/c1/nested/cgroup.procs'), '103');
    expect(await manager.pids()).toEqual([101, 102, 103]);
    await expect(manager.addProcess(-1)).rejects.toMatchObject({ code: 'ECGROUPVALUE' });
  });

  it('reads stats and the OOM state (fake cgroupfs)', async () => {
    const { fake, manager } = await setup();
    await fake.write('memory/box/c1/memory.usage_in_bytes', '1048576\n');
    await fake.write('memory/box/c1/memory.max_usage_in_bytes', '2097152\n');
    await fake.write('cpuacct/box/c1/cpuacct.usage', '123456789\n');
    await fake.write('pids/box/c1/pids.current', '3\n');
    expect(await manager.stats()).toEqual({
      memory: { usage: 1_048_576, peak: 2_097_152, limit: null },
      cpu: { usageNs: 123_456_789 },
      pids: { current: 3, limit: null },
    });
    await manager.apply({ memory: { limit: 33_554_432 }, pids: { limit: 20 } });
    expect((await manager.stats()).memory?.limit).toBe(33_554_432);
    expect((await manager.stats()).pids?.limit).toBe(20);

    expect(await manager.oomKilled()).toBe(false);
    await fake.write('memory/box/c1/memory.oom_control', 'oom_kill_disable 0\nunder_oom 0\noom_kill 1\n');
    expect(await manager.oomKilled()).toBe(true);
    await fake.write('memory/box/c1/memory.oom_control', 'oom_kill_disable 1\nunder_oom 1\n');
    expect(await manager.oomKilled()).toBe(true);
  });

  it('signals every process between a freeze and a thaw (fake cgroupfs)', async () => {
    const { fake, manager } = await setup();
    const [a, b] = [sleeper(), sleeper()];
    await manager.addProcess(a.pid);
    await manager.addProcess(b.pid);
    const exits = [once(a, 'exit'), once(b, 'exit')];
    await manager.killAll('SIGTERM');
    expect((await Promise.all(exits)).map(([, signal]) => signal)).toEqual(['SIGTERM', 'SIGTERM']);
    expect(await fake.read('freezer/box/c1/freezer.state')).toBe('THAWED');
  });

  it('destroys child cgroups deepest first and leaves nothing (fake cgroupfs)', async () => {
    const { fake, manager } = await setup();
    await fake.fs.mkdir(fake.path('memory', 'box/c1/a'));
    await fake.fs.mkdir(fake.path('memory', 'box/c1/a/b'));
    await fake.fs.mkdir(fake.path('cpu', 'box/c1/x'));
    await manager.destroy();
    expect((await fake.listDirs()).filter((dir) => dir.includes('c1'))).toEqual([]);
    // The parent `box` goes with its last container; destroying twice is fine.
    expect(await fake.exists('memory', 'box')).toBe(false);
    await manager.destroy();
  });

  it('with keepParents, removes only the cgroup, never its empty parents, as runc (fake cgroupfs)', async () => {
    fake = await createFakeCgroupfs({ layout: 'hybrid', controllers: ['memory', 'name=systemd'] });
    const options = { path: 'kubepods/besteffort/pod1/c1', mountinfo: fake.mountinfo, fs: fake.fs };
    const manager = await createCgroupManager({ ...options, keepParents: true });
    await manager.create();
    await manager.destroy();
    for (const h of ['memory', 'name=systemd', 'unified']) {
      expect(await fake.exists(h, 'kubepods/besteffort/pod1/c1'), h).toBe(false);
      expect(await fake.exists(h, 'kubepods/besteffort/pod1'), h).toBe(true);
    }
    // Without it, the empty parents go too.
    const other = await createCgroupManager(options);
    await other.create();
    await other.destroy();
    expect(await fake.exists('memory', 'kubepods')).toBe(false);
  });

  it('keeps the shared parent while another container uses it (fake cgroupfs)', async () => {
    const { fake, manager } = await setup();
    await fake.fs.mkdir(fake.path('memory', 'box/c2'));
    await manager.destroy();
    expect(await fake.exists('memory', 'box/c1')).toBe(false);
    expect(await fake.exists('memory', 'box/c2')).toBe(true);
    expect(await fake.exists('cpu', 'box')).toBe(false);
  });

  it('retries EBUSY, then reports the busy cgroup by path (fake cgroupfs)', async () => {
    const { fake, manager } = await setup();
    await manager.addProcess(4242);
    // The "process" leaves shortly: the retry succeeds.
    setTimeout(() => {
      for (const h of [...HIERARCHIES, 'unified']) void fake.write(`${h}/box/c1/cgroup.procs`, '');
    }, 30);
    await manager.destroy();
    expect(await fake.exists('memory', 'box/c1')).toBe(false);

    await manager.create();
    await manager.addProcess(4242);
    const error = await manager.destroy().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ECGROUPBUSY', errno: 'EBUSY' });
    // The tracker (unified) still busy too, which fails nothing of its own.
    expect((error as Error).message).toMatch(/cannot remove cgroup .+ from 8 hierarchies/);
    expect((error as Error).message).not.toContain('unified');
  });

  it('supports co-mounted controllers such as cpu,cpuacct (fake cgroupfs)', async () => {
    const { fake, manager } = await setup({
      layout: 'legacy',
      controllers: ['cpu,cpuacct', 'memory', 'cpuset'],
    });
    expect(manager.mode).toBe('legacy');
    expect(manager.dirs).toHaveLength(3);
    await manager.apply({ cpu: { shares: 100 } });
    expect(await fake.read('cpu,cpuacct/box/c1/cpu.shares')).toBe('100');
    expect((await manager.stats()).cpu).toEqual({ usageNs: 0 });
    expect((await manager.stats()).pids).toBeUndefined();
    await manager.destroy();
    expect(await fake.exists('cpu,cpuacct', 'box/c1')).toBe(false);
  });

  it('finds the same hierarchies from a root directory as from mountinfo (fake cgroupfs)', async () => {
    const { fake, manager } = await setup();
    const fromRoot = await createCgroupManager({ path: '/box/c1', root: fake.root, fs: fake.fs });
    expect(fromRoot.mode).toBe('hybrid');
    expect([...fromRoot.dirs].sort()).toEqual([...manager.dirs].sort());
  });

  it('undoes a half-done create (fake cgroupfs)', async () => {
    fake = await createFakeCgroupfs({ layout: 'legacy' });
    const manager = await createCgroupManager({ path: 'box/c1', mountinfo: fake.mountinfo, fs: fake.fs });
    const mkdir = fake.fs.mkdir;
    let made = 0;
    fake.fs.mkdir = async (path) => {
      made++;
      if (path.startsWith(fake!.path('pids'))) throw Object.assign(new Error('EACCES'), { code: 'EACCES' });
      return mkdir(path);
    };
    await expect(manager.create()).rejects.toMatchObject({ code: 'ECGROUPIO', errno: 'EACCES' });
    expect(made).toBeGreaterThan(0);
    expect((await fake.listDirs()).filter((dir) => dir.includes('box'))).toEqual([]);
  });
});
