import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { box, boxAsync, useBoxRoot, waitFor } from '../helpers/box.js';

const env = useBoxRoot();

const sh = (script: string, flags: string[] = []) =>
  box(env.root, ['run', '--rm', ...flags, 'busybox', 'sh', '-c', script]);

describe('box run isolates the container', () => {
  it('has its own hostname (uts namespace)', () => {
    const r = sh('hostname');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^[0-9a-f]{12}$/);
    expect(r.stdout.trim()).not.toBe(hostname());
    const named = sh('hostname', ['--hostname', 'web01']);
    expect(named.stdout.trim()).toBe('web01');
    expect(hostname()).not.toBe('web01');
  });

  it('runs the command as PID 1 and shows no host process (pid namespace)', () => {
    const r = sh('echo $$; ls /proc | grep -E "^[0-9]+$"');
    expect(r.code).toBe(0);
    const [self, ...pids] = r.stdout.trim().split('\n');
    expect(self).toBe('1');
    // Only the shell (1) and ls/grep children exist; the host has hundreds and this test's pid.
    expect(pids.map(Number).every((pid) => pid < 10)).toBe(true);
    expect(pids).not.toContain(String(process.pid));
  });

  it('has its own mount table and the host never sees its mounts (mount namespace)', async () => {
    const run = boxAsync(env.root, [
      'run',
      '--rm',
      'busybox',
      'sh',
      '-c',
      'cat /proc/self/mountinfo; echo READY; sleep 1',
    ]);
    await waitFor(() => run.output().includes('READY'));
    // While the container runs, its overlay root and /proc, /dev mounts are not in the host's table.
    const host = readFileSync('/proc/self/mountinfo', 'utf8');
    expect(host).not.toContain(`${env.root}/containers`);
    const r = await run.done;
    expect(r.code).toBe(0);
    const rootLine = r.stdout.split('\n').find((l) => l.split(' ')[4] === '/');
    expect(rootLine).toContain(' - overlay ');
    expect(r.stdout).not.toMatch(/ \/work /);
    expect(r.stdout.split('\n').length).toBeLessThan(host.split('\n').length + 20);
    // Without CAP_SYS_ADMIN (docker's default set) the container cannot mount.
    expect(sh('mount -t tmpfs tmpfs /mnt').code).not.toBe(0);
  });

  it('has only lo, up, in its network namespace with --network none', () => {
    const r = sh('ls /sys/class/net; cat /sys/class/net/lo/operstate; ip -o link | wc -l', [
      '--network',
      'none',
    ]);
    expect(r.code).toBe(0);
    const [links, , count] = r.stdout.trim().split('\n');
    expect(links).toBe('lo');
    expect(count?.trim()).toBe('1');
  });

  it('has its own IPC, UTS, network and mount namespaces', () => {
    const r = sh('for n in ipc uts net mnt pid; do readlink /proc/self/ns/$n; done');
    expect(r.code).toBe(0);
    const inside = r.stdout.trim().split('\n');
    const host = ['ipc', 'uts', 'net', 'mnt', 'pid'].map((n) => readlinkSync(`/proc/self/ns/${n}`));
    expect(inside).toHaveLength(5);
    inside.forEach((ns, i) => {
      expect(ns).toMatch(/^[a-z]+:\[\d+\]$/);
      expect(ns).not.toBe(host[i]);
    });
  });

  it('keeps writes in the container layer, not in the image', () => {
    const r = sh('echo changed > /etc/motd && cat /etc/motd');
    expect(r.stdout.trim()).toBe('changed');
    // No layer of the image has it.
    const layers = readdirSync(`${env.root}/image/layers`);
    expect(layers.length).toBeGreaterThan(0);
    for (const layer of layers)
      expect(existsSync(`${env.root}/image/layers/${layer}/diff/etc/motd`)).toBe(false);
  });

  it('mounts /proc, /dev, /dev/pts, /dev/shm and a read-only /sys', () => {
    const r = sh(
      'ls /dev; grep -E " /(proc|dev|dev/pts|dev/shm|sys) " /proc/self/mounts; touch /sys/x 2>&1; cat /proc/kcore | wc -c',
    );
    expect(r.code).toBe(0);
    for (const node of ['null', 'zero', 'full', 'random', 'urandom', 'tty', 'ptmx', 'pts', 'shm']) {
      expect(r.stdout.split('\n')).toContain(node);
    }
    expect(r.stdout).toMatch(/^proc \/proc proc /m);
    expect(r.stdout).toMatch(/^devpts \/dev\/pts devpts .*ptmxmode=666/m);
    expect(r.stdout).toMatch(/^sysfs \/sys sysfs ro,/m);
    expect(r.stdout).toContain('Read-only file system');
    // /proc/kcore is masked with /dev/null.
    expect(r.stdout.trim().split('\n').at(-1)).toBe('0');
  });

  it('drops capabilities to docker defaults', () => {
    const r = sh('grep CapEff /proc/self/status');
    expect(r.stdout.trim()).toBe('CapEff:\t00000000a80425fb');
  });
});

describe('box run applies the process settings', () => {
  it('sets environment variables, working directory and user', () => {
    const r = box(env.root, [
      'run',
      '--rm',
      '-e',
      'GREETING=hello world',
      '-e',
      'EMPTY=',
      '-w',
      '/tmp',
      '-u',
      '65534:65534',
      'busybox',
      'sh',
      '-c',
      'echo "$GREETING|$EMPTY|$(pwd)|$(id -u):$(id -g)|$HOME"; grep CapEff /proc/self/status',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('hello world||/tmp|65534:65534|/home');
    expect(r.stdout).toContain('CapEff:\t0000000000000000');
  });

  it('resolves user names from the image and copies -e NAME from the host', () => {
    const r = box(
      env.root,
      ['run', '--rm', '-u', 'daemon', '-e', 'FROM_HOST', 'busybox', 'sh', '-c', 'id -u; echo $FROM_HOST'],
      {
        env: { FROM_HOST: 'copied' },
      },
    );
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(['1', 'copied']);
  });

  it('passes stdin with -i and gives /dev/null without it', () => {
    expect(box(env.root, ['run', '--rm', '-i', 'busybox', 'cat'], { input: 'piped\n' }).stdout).toBe(
      'piped\n',
    );
    expect(box(env.root, ['run', '--rm', 'busybox', 'cat'], { input: 'piped\n' }).stdout).toBe('');
  });
});
