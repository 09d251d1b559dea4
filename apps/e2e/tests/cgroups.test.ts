import { existsSync, readFileSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { box, boxAsync, boxCgroups, useBoxRoot, waitFor } from '../helpers/box.js';

const V1 = '/sys/fs/cgroup';
const hasV1 = existsSync(`${V1}/memory/memory.limit_in_bytes`);

const env = useBoxRoot();

function containerId(name: string): string {
  return readlinkSync(join(env.root, 'names', name));
}

function containerPid(name: string): number {
  try {
    return (
      JSON.parse(readFileSync(join(env.root, 'containers', containerId(name), 'state.json'), 'utf8')).pid ?? 0
    );
  } catch {
    return 0;
  }
}

describe('cgroup limits on the real cgroup v1 hierarchies', () => {
  // A machine without them fails here: these tests never pass by skipping.
  beforeAll(() => {
    if (!hasV1) throw new Error(`this machine has no cgroup v1 memory hierarchy at ${V1}/memory`);
  });

  it('OOM-kills a memory hog under -m 32m and records it', () => {
    const r = box(env.root, [
      'run',
      '--name',
      'hog',
      '-m',
      '32m',
      '--memory-swap',
      '32m',
      'busybox',
      'tail',
      '/dev/zero',
    ]);
    expect(r.code).toBe(137);
    const state = JSON.parse(
      readFileSync(join(env.root, 'containers', containerId('hog'), 'state.json'), 'utf8'),
    );
    expect(state).toMatchObject({ status: 'exited', exitCode: 137, oomKilled: true });
    expect(box(env.root, ['rm', 'hog']).code).toBe(0);
  });

  it('does not report OOM for a container that exits on its own', () => {
    expect(box(env.root, ['run', '--name', 'calm', '-m', '32m', 'busybox', 'true']).code).toBe(0);
    const state = JSON.parse(
      readFileSync(join(env.root, 'containers', containerId('calm'), 'state.json'), 'utf8'),
    );
    expect(state.oomKilled).toBe(false);
    expect(box(env.root, ['rm', 'calm']).code).toBe(0);
  });

  it('stops a fork loop at --pids-limit 20', async () => {
    const run = boxAsync(env.root, [
      'run',
      '--rm',
      '--name',
      'forker',
      '--pids-limit',
      '20',
      'busybox',
      'sh',
      '-c',
      // busybox sh gives up when fork fails, so the loop runs in a shell of its own.
      "sh -c 'for i in $(seq 40); do sleep 30 & done' & sleep 1; echo READY; sleep 30",
    ]);
    await waitFor(() => run.output().includes('READY'));
    const dir = join(V1, 'pids', 'box', containerId('forker'));
    expect(readFileSync(join(dir, 'pids.max'), 'utf8').trim()).toBe('20');
    const current = Number(readFileSync(join(dir, 'pids.current'), 'utf8'));
    expect(current).toBeLessThanOrEqual(20);
    expect(current).toBeGreaterThanOrEqual(18);
    process.kill(containerPid('forker'), 'SIGKILL');
    const r = await run.done;
    expect(r.stderr).toMatch(/can't fork|Resource temporarily unavailable/);
    expect(r.code).toBe(137);
  });

  it('refuses an exec into a container at its --pids-limit; what an exec forks counts', async () => {
    const id = box(env.root, [
      'run',
      '-d',
      '--name',
      'full',
      '--pids-limit',
      '5',
      'busybox',
      'sh',
      '-c',
      'sleep 1000 & sleep 1000 & sleep 1000 & sleep 1000 & wait',
    ]).stdout.trim();
    try {
      const dir = join(V1, 'pids', 'box', id);
      const read = (file: string) => readFileSync(join(dir, file), 'utf8');
      const current = () => Number(read('pids.current'));
      const refusedForks = () => Number(/^max (\d+)$/m.exec(read('pids.events'))![1]);
      await waitFor(() => current() === 5);

      /** Runs box exec, sampling pids.current until it ends; returns its result and the highest sample. */
      const execSampled = async (args: string[]) => {
        const exec = boxAsync(env.root, ['exec', 'full', ...args]);
        let highest = 0;
        let done = false;
        const result = exec.done.then((r) => {
          done = true;
          return r;
        });
        while (!done) {
          highest = Math.max(highest, current());
          await new Promise((r) => setTimeout(r, 1));
        }
        return { ...(await result), highest };
      };

      // Full: the exec'd process is not let in, as a fork in the container would not be.
      const refused = await execSampled(['sh', '-c', 'sleep 1 & sleep 1 & wait']);
      expect(refused.stderr).toContain('pids limit (5)');
      expect(refused.code).toBe(126);
      expect(refused.highest).toBeLessThanOrEqual(5);
      expect(current()).toBe(5);

      // Room for two: the exec'd shell and one of its children; its other forks fail.
      expect(box(env.root, ['update', '--pids-limit', '7', 'full']).code).toBe(0);
      const before = refusedForks();
      const limited = await execSampled(['sh', '-c', 'sleep 1 & sleep 1 & sleep 1 & wait']);
      expect(limited.stderr).toMatch(/can't fork|Resource temporarily unavailable/);
      expect(limited.highest).toBeLessThanOrEqual(7);
      expect(refusedForks()).toBeGreaterThan(before);
    } finally {
      expect(box(env.root, ['rm', '-f', 'full']).code).toBe(0);
      // Its owner, the box service, removes the cgroup once it has seen it end.
      await waitFor(() => !boxCgroups().some((c) => c.endsWith(id)));
    }
  });

  it('pins to --cpuset-cpus 0 and sets the CFS quota for --cpus 0.5', async () => {
    const run = boxAsync(env.root, [
      'run',
      '--rm',
      '--name',
      'pinned',
      '--cpuset-cpus',
      '0',
      '--cpus',
      '0.5',
      '-m',
      '64m',
      '--cpu-shares',
      '512',
      'busybox',
      'sh',
      '-c',
      'grep Cpus_allowed_list /proc/self/status; echo READY; sleep 30',
    ]);
    await waitFor(() => run.output().includes('READY'));
    expect(run.output()).toContain('Cpus_allowed_list:\t0\n');
    const id = containerId('pinned');
    const read = (h: string, f: string) => readFileSync(join(V1, h, 'box', id, f), 'utf8').trim();
    expect(read('cpu', 'cpu.cfs_quota_us')).toBe('50000');
    expect(read('cpu', 'cpu.cfs_period_us')).toBe('100000');
    expect(read('cpu', 'cpu.shares')).toBe('512');
    expect(read('cpuset', 'cpuset.cpus')).toBe('0');
    expect(read('memory', 'memory.limit_in_bytes')).toBe(String(64 * 1024 * 1024));
    // docker's device allow-list: /dev/null yes, a disk no.
    expect(read('devices', 'devices.list')).toContain('c 1:3 rwm');
    expect(read('devices', 'devices.list')).not.toContain('a *:* rwm');
    process.kill(containerPid('pinned'), 'SIGKILL');
    expect((await run.done).code).toBe(137);
  });

  it('box stats reports usage that moves', async () => {
    const run = boxAsync(env.root, [
      'run',
      '--rm',
      '--name',
      'busy',
      '-m',
      '64m',
      'busybox',
      'sh',
      '-c',
      'echo READY; while true; do :; done',
    ]);
    await waitFor(() => run.output().includes('READY'));
    const stats = () => {
      const r = box(env.root, ['stats', '--no-stream', '--format', 'json', 'busy']);
      expect(r.code).toBe(0);
      return JSON.parse(r.stdout.trim());
    };
    const first = stats();
    // docker's stats JSON: strings, sizes as units.BytesSize prints them.
    expect(first).toMatchObject({ Name: 'busy', Container: 'busy', PIDs: '1' });
    expect(first.MemUsage).toMatch(/^\d+(\.\d+)?(B|KiB|MiB) \/ 64MiB$/);
    expect(first.MemUsage).not.toMatch(/^0B /);
    expect(Number.parseFloat(first.CPUPerc)).toBeGreaterThan(20);
    const table = box(env.root, ['stats', '--no-stream']);
    expect(table.stdout).toMatch(/^CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE \/ LIMIT\s+MEM %\s+PIDS$/m);
    expect(table.stdout).toMatch(/busy\s+\d+\.\d\d%\s+\S+ \/ 64MiB/);
    process.kill(containerPid('busy'), 'SIGKILL');
    await run.done;
  });

  it('pause, unpause and update a running container', async () => {
    const run = boxAsync(env.root, [
      'run',
      '-d',
      '--name',
      'paws',
      '-m',
      '64m',
      'busybox',
      'sh',
      '-c',
      'while true; do sleep 0.05; done',
    ]);
    expect((await run.done).code).toBe(0);
    const id = containerId('paws');
    const freezer = () => readFileSync(join(V1, 'freezer', 'box', id, 'freezer.state'), 'utf8').trim();
    expect(box(env.root, ['pause', 'paws']).code).toBe(0);
    expect(freezer()).toBe('FROZEN');
    expect(box(env.root, ['ps', '--format', '{{.Names}} {{.State}}']).stdout.trim()).toBe('paws paused');
    expect(JSON.parse(box(env.root, ['inspect', 'paws']).stdout)[0].State).toMatchObject({
      Status: 'paused',
      Paused: true,
    });
    expect(box(env.root, ['unpause', 'paws']).code).toBe(0);
    expect(freezer()).toBe('THAWED');

    expect(box(env.root, ['update', '-m', '128m', '--cpus', '0.25', '--pids-limit', '50', 'paws']).code).toBe(
      0,
    );
    const read = (h: string, f: string) => readFileSync(join(V1, h, 'box', id, f), 'utf8').trim();
    expect(read('memory', 'memory.limit_in_bytes')).toBe(String(128 * 1024 * 1024));
    expect(read('cpu', 'cpu.cfs_quota_us')).toBe('25000');
    expect(read('pids', 'pids.max')).toBe('50');
    expect(JSON.parse(box(env.root, ['inspect', 'paws']).stdout)[0].HostConfig.Memory).toBe(
      128 * 1024 * 1024,
    );
    expect(box(env.root, ['update', '-m', '1k', 'paws']).code).toBe(125);

    // A paused container still stops (thawed after the signal).
    expect(box(env.root, ['pause', 'paws']).code).toBe(0);
    expect(box(env.root, ['rm', '-f', 'paws']).code).toBe(0);
  });

  it("puts the container in its cgroup in name=systemd's hierarchy and the hybrid cgroup2 one too, and removes them", () => {
    // Left in box's own cgroup there, the container would belong to the unit that started box,
    // for systemd, and read that unit's path in /proc/self/cgroup.
    const r = box(env.root, ['run', '--name', 'tracked', 'busybox', 'cat', '/proc/self/cgroup']);
    expect(r.code, r.stderr).toBe(0);
    const id = containerId('tracked');
    const lines = r.stdout.trim().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(10);
    for (const line of lines) expect(line).toMatch(new RegExp(`^\\d+:[^:]*:/box/${id}$`));
    expect(lines).toContain(`9:name=systemd:/box/${id}`);
    expect(lines).toContain(`0::/box/${id}`);
    expect(box(env.root, ['rm', 'tracked']).code).toBe(0);
    for (const hierarchy of ['systemd', 'unified'])
      expect(existsSync(join(V1, hierarchy, 'box', id)), hierarchy).toBe(false);
  });

  it('shows the container its own cgroup at /sys/fs/cgroup, read-only (writable under --privileged), as docker', () => {
    // Where a JVM or Go's GOMAXPROCS helpers read the limits they size themselves to.
    const script =
      'cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; ls /sys/fs/cgroup; echo 1 > /sys/fs/cgroup/pids/pids.max && echo wrote';
    const r = box(env.root, [
      'run',
      '--rm',
      '-m',
      '64m',
      '--pids-limit',
      '50',
      'busybox',
      'sh',
      '-c',
      script,
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe(
      `${64 * 1024 * 1024}\n50\nblkio\ncpu\ncpuacct\ncpuset\ndevices\nfreezer\nmemory\npids\nsystemd\n`,
    );
    expect(r.stderr).toMatch(/Read-only file system/);
    // As an attacker inside would look: only its own cgroup, each bind read-only and without
    // suid, devices or exec; no hierarchy root (release_agent); no remount to writable.
    const look = box(env.root, [
      'run',
      '--name',
      'looker',
      'busybox',
      'sh',
      '-c',
      'grep " /sys/fs/cgroup/" /proc/self/mountinfo | cut -d" " -f4,6; ls /sys/fs/cgroup/*/release_agent; mount -o remount,rw /sys/fs/cgroup/memory && echo remounted',
    ]);
    const id = containerId('looker');
    const binds = look.stdout.trim().split('\n');
    expect(binds).toHaveLength(9);
    for (const line of binds)
      expect(line).toMatch(new RegExp(`^/box/${id} ro,nosuid,nodev,noexec,relatime$`));
    expect(look.stdout).not.toContain('remounted');
    expect(look.stderr).toMatch(/release_agent: No such file or directory/);
    expect(box(env.root, ['rm', 'looker']).code).toBe(0);
    const privileged = box(env.root, [
      'run',
      '--rm',
      '--privileged',
      '--pids-limit',
      '50',
      'busybox',
      'sh',
      '-c',
      'echo 40 > /sys/fs/cgroup/pids/pids.max && cat /sys/fs/cgroup/pids/pids.max',
    ]);
    expect(privileged.stdout, privileged.stderr).toBe('40\n');
  });

  it("mirrors the host's link to a co-mounted hierarchy (cpu -> cpu,cpuacct) as a link", () => {
    // This machine mounts each controller apart; a link in its /sys/fs/cgroup stands in for the
    // ones distributions make to a co-mounted hierarchy.
    const link = `box-e2e-link-${process.pid}`;
    symlinkSync('memory', join(V1, link));
    try {
      const r = box(env.root, [
        'run',
        '--rm',
        '-m',
        '48m',
        'busybox',
        'sh',
        '-c',
        `readlink /sys/fs/cgroup/${link}; cat /sys/fs/cgroup/${link}/memory.limit_in_bytes; grep -c " /sys/fs/cgroup/${link} " /proc/self/mountinfo`,
      ]);
      expect(r.stdout).toBe(`memory\n${48 * 1024 * 1024}\n0\n`);
    } finally {
      rmSync(join(V1, link), { force: true });
    }
  });

  it('leaves no cgroup after a failed start', () => {
    // Fails before the cgroup is made (lookup), and after (chdir in the container).
    expect(box(env.root, ['run', '--rm', '-m', '32m', 'busybox', 'no-such-command']).code).toBe(127);
    expect(box(env.root, ['run', '--rm', '-m', '32m', '-w', '/etc/passwd', 'busybox', 'true']).code).toBe(
      125,
    );
  });

  it('cleans up the cgroup of a container whose box was killed, on the next command', async () => {
    const run = boxAsync(env.root, [
      'run',
      '--name',
      'orphan',
      '-m',
      '32m',
      'busybox',
      'sh',
      '-c',
      'echo READY; sleep 30',
    ]);
    await waitFor(() => run.output().includes('READY'));
    const id = containerId('orphan');
    run.child.kill('SIGKILL');
    await run.done;
    // The container dies with its box: killed by its parent-death signal when box was its parent
    // (its cgroup and record then wait for the next command), or by the box service at once when
    // the service ran it for box (it sees the connection close).
    const procs = join(V1, 'memory', 'box', id, 'cgroup.procs');
    await waitFor(() => !existsSync(procs) || readFileSync(procs, 'utf8').trim() === '');
    expect(box(env.root, ['run', '--rm', 'busybox', 'true']).code).toBe(0);
    expect(boxCgroups()).toEqual([]);
    const state = JSON.parse(readFileSync(join(env.root, 'containers', id, 'state.json'), 'utf8'));
    expect(state).toMatchObject({ status: 'exited', exitCode: 137 });
    expect(box(env.root, ['rm', 'orphan']).code).toBe(0);
  });
});

describe('resource flags with bad values', () => {
  it.each([
    [['-m', '1k'], /Minimum memory limit allowed is 6MB/],
    [['-m', 'lots'], /invalid argument "lots" for "--memory" flag/],
    [['--cpus', '-1'], /invalid argument "-1" for "--cpus" flag/],
    [['--cpus', '64'], /only 2 are available|range is 0.01/],
    [['--cpuset-cpus', '99'], /invalid argument "99" for "--cpuset-cpus" flag: .*not available/],
    [['--memory-swap', '64m'], /always set the Memory limit/],
    [['--pids-limit', 'many'], /not an integer/],
  ])('rejects %j with exit 125', (flags, message) => {
    const r = box(env.root, ['run', '--rm', ...flags, 'busybox', 'true']);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
