/**
 * box-runtime driven by the real clients: podman (`--runtime`) and containerd's runc shim
 * (`ctr run --runc-binary`, what a Kubernetes RuntimeClass uses), each on a temporary root of
 * its own, with everything they made removed afterwards.
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { boxOk, repoRoot, useBoxRoot, waitFor } from '../helpers/box.js';

const env = useBoxRoot();
const runtimeBin = join(repoRoot, 'scripts/box-runtime');
let dir: string;
let archive: string;

function sh(command: string, args: string[], extra: Record<string, string> = {}) {
  const r = spawnSync(command, args, {
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, ...extra },
  });
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/**
 * Runs a client under util-linux `script`, which gives it a real pseudo-terminal; `input` is
 * typed once the container has had time to start.
 */
function inTerminal(command: string[], input: string, extra: Record<string, string> = {}) {
  const quote = (v: string) => `'${v.replaceAll("'", "'\\''")}'`;
  const line = command.map(quote).join(' ');
  const r = spawnSync(
    'sh',
    ['-c', `(sleep 2; printf %s ${quote(input)}) | script -qefc ${quote(line)} /dev/null`],
    {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, ...extra },
    },
  );
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** Removes the (empty) cgroups a client made for itself under `name` on every hierarchy. */
function removeCgroups(name: string): void {
  for (const hierarchy of readdirSync('/sys/fs/cgroup')) {
    const top = join('/sys/fs/cgroup', hierarchy, name);
    if (!existsSync(top)) continue;
    for (const entry of readdirSync(top, { withFileTypes: true }))
      if (entry.isDirectory()) rmdirSync(join(top, entry.name));
    rmdirSync(top);
  }
}

beforeAll(() => {
  for (const tool of ['podman', 'containerd', 'ctr'])
    if (sh('sh', ['-c', `command -v ${tool}`]).code !== 0)
      throw new Error(`${tool} is not installed (scripts/setup.sh installs it)`);
  dir = mkdtempSync(join(tmpdir(), 'box-e2e-clients-'));
  archive = join(dir, 'busybox.tar');
  boxOk(env.root, ['save', 'busybox', '-o', archive]);
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('podman --runtime box-runtime', () => {
  let podman: (...args: string[]) => ReturnType<typeof sh>;
  let podmanArgs: string[];
  let conf: Record<string, string>;

  beforeAll(() => {
    const conf_ = join(dir, 'containers.conf');
    // This host's hard limits (root lacks CAP_SYS_RESOURCE), cgroupfs, no event log.
    writeFileSync(
      conf_,
      '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "none"\n',
    );
    conf = { CONTAINERS_CONF: conf_ };
    const base = [
      '--root',
      join(dir, 'storage'),
      '--runroot',
      join(dir, 'run'),
      '--storage-driver',
      'vfs',
      '--runtime',
      runtimeBin,
    ];
    podmanArgs = ['podman', ...base];
    podman = (...args) => sh('podman', [...base, ...args], conf);
    expect(podman('load', '-i', archive).code).toBe(0);
  });

  afterAll(() => {
    podman?.('rm', '-af');
    podman?.('rmi', '-af');
    removeCgroups('libpod_parent');
  });

  it('runs, execs, pauses, stops and removes containers with limits', async () => {
    const run = podman('run', '--rm', '--network', 'none', 'busybox', 'echo', 'hello from podman');
    expect(run.stdout.trim(), run.stderr).toBe('hello from podman');
    // A non-root --user: podman gives it no effective capabilities, so the container's process
    // opens box-runtime's exec FIFO as uid 1000 without CAP_DAC_OVERRIDE.
    const user = podman('run', '--rm', '--network', 'none', '--user', '1000:1000', 'busybox', 'id');
    expect(user.stdout, user.stderr).toMatch(/^uid=1000\(\d*\) gid=1000\(/);
    // --privileged: every capability this process has, and the host's device nodes, which podman
    // lists with their file type bits in fileMode.
    const privileged = podman(
      'run',
      '--rm',
      '--network',
      'none',
      '--privileged',
      'busybox',
      'sh',
      '-c',
      'grep CapEff /proc/self/status; busybox stat -c "%F %t:%T" /dev/null',
    );
    const ownCaps = /^CapEff:.*$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[0];
    expect(privileged.stdout, privileged.stderr).toBe(`${ownCaps}\ncharacter special file 1:3\n`);
    // --read-only and --tmpfs: podman asks for its tmpfs mounts with runc's tmpcopyup. A tmpfs on
    // /etc starts with the image's files, and podman's /etc/hosts is mounted on it afterwards.
    const readOnly = podman(
      'run',
      '--rm',
      '--network',
      'none',
      '--read-only',
      '--tmpfs',
      '/scratch',
      '--tmpfs',
      '/etc',
      'busybox',
      'sh',
      '-c',
      'touch /x 2>/dev/null || echo read-only; echo a > /scratch/f; echo b > /run/f; cat /scratch/f /run/f; head -1 /etc/passwd; grep -c localhost /etc/hosts; echo c > /etc/f; cat /etc/f',
    );
    expect(readOnly.stdout, readOnly.stderr).toBe('read-only\na\nb\nroot:x:0:0:root:/root:/bin/sh\n1\nc\n');
    const id = podman(
      'run',
      '-d',
      '--network',
      'none',
      '--pids-limit',
      '50',
      '-m',
      '64m',
      '--cap-drop',
      'NET_RAW',
      'busybox',
      'sleep',
      '100',
    ).stdout.trim();
    const exec = podman(
      'exec',
      id,
      'sh',
      '-c',
      'cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/memory.limit_in_bytes; grep CapEff /proc/self/status',
    );
    expect(exec.stdout).toMatch(/^50\n67108864\nCapEff:\s+0*a80405fb\n$/);
    expect(podman('pause', id).code).toBe(0);
    expect(podman('inspect', '--format', '{{.State.Status}}', id).stdout.trim()).toBe('paused');
    expect(podman('unpause', id).code).toBe(0);
    expect(podman('kill', id).code).toBe(0);
    // podman shows "stopped" until its cleanup has recorded the exit: a moment, longer under load.
    await waitFor(
      () => podman('inspect', '--format', '{{.State.Status}}', id).stdout.trim() === 'exited',
      10_000,
    );
    expect(podman('rm', '-f', id).code).toBe(0);
    expect(podman('ps', '-aq').stdout.trim()).toBe('');
  });

  it('logs, stop, and -it with a terminal for run and exec', async () => {
    const id = podman(
      'run',
      '-d',
      '--network',
      'none',
      'busybox',
      'sh',
      '-c',
      "trap 'echo stopping; exit 3' TERM; echo out; echo err >&2; while :; do sleep 0.1; done",
    ).stdout.trim();
    // The container's stdout and stderr reach conmon's log through the fds box-runtime gave it.
    await waitFor(() => podman('logs', id).stderr.includes('err'), 10_000);
    const logs = podman('logs', id);
    expect([logs.stdout, logs.stderr]).toEqual(['out\n', 'err\n']);
    expect(podman('stop', '-t', '10', id).code).toBe(0);
    expect(podman('inspect', '--format', '{{.State.ExitCode}}', id).stdout.trim()).toBe('3');
    expect(podman('logs', id).stdout).toBe('out\nstopping\n');
    expect(podman('rm', id).code).toBe(0);

    const run = inTerminal(
      [...podmanArgs, 'run', '--rm', '-it', '--network', 'none', 'busybox', 'sh'],
      'tty; echo "T=$TERM"; exit 5\n',
      conf,
    );
    expect(run.stdout).toMatch(/\/dev\/pts\/0\r*\n/);
    expect(run.stdout).toContain('T=xterm');
    expect(run.code).toBe(5);
    const sleeper = podman('run', '-d', '--network', 'none', 'busybox', 'sleep', '100').stdout.trim();
    const exec = inTerminal([...podmanArgs, 'exec', '-it', sleeper, 'sh'], 'tty; exit 6\n', conf);
    expect(exec.stdout).toMatch(/\/dev\/pts\/\d+\r*\n/);
    expect(exec.code).toBe(6);
    expect(podman('kill', sleeper).code).toBe(0);
    expect(podman('rm', '-f', sleeper).code).toBe(0);
    expect(podman('ps', '-aq').stdout.trim()).toBe('');
  });
});

describe('containerd: ctr run --runc-binary box-runtime (the runc shim)', () => {
  let ctr: (...args: string[]) => ReturnType<typeof sh>;
  let daemon: ReturnType<typeof spawn> | undefined;
  let base: string;

  beforeAll(async () => {
    base = join(dir, 'containerd');
    const config = join(dir, 'containerd.toml');
    writeFileSync(
      config,
      `version = 2\nroot = "${base}/root"\nstate = "${base}/state"\n[grpc]\n  address = "${base}/sock"\n`,
    );
    daemon = spawn('containerd', ['--config', config], { stdio: 'ignore' });
    ctr = (...args) => sh('ctr', ['-a', `${base}/sock`, ...args]);
    await waitFor(() => ctr('version').code === 0, 10_000);
    expect(ctr('images', 'import', archive).code).toBe(0);
  });

  afterAll(async () => {
    if (daemon) {
      daemon.kill('SIGTERM');
      await new Promise((resolve) => daemon!.once('exit', resolve));
    }
    // Its mounts under the temp root, its runtime state, its cgroups.
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n').reverse()) {
      const mountPoint = line.split(' ')[4];
      if (mountPoint?.startsWith(base)) sh('umount', ['-l', mountPoint]);
    }
    rmSync('/run/containerd/runc/default', { recursive: true, force: true });
    removeCgroups('default');
  });

  it('runs, execs (exit codes passed through), pauses, kills and removes a task', () => {
    const image = 'docker.io/library/busybox:latest';
    const run = ctr('run', '--rm', '--runc-binary', runtimeBin, image, 'c1', 'echo', 'hello from containerd');
    expect(run.stdout.trim(), run.stderr).toBe('hello from containerd');
    expect(ctr('run', '-d', '--runc-binary', runtimeBin, image, 'c2', 'sleep', '100').code).toBe(0);
    for (let i = 0; i < 3; i++)
      expect(ctr('task', 'exec', '--exec-id', `e${i}`, 'c2', 'sh', '-c', 'exit 3').code).toBe(3);
    expect(ctr('task', 'exec', '--exec-id', 'e9', 'c2', 'echo', 'exec ok').stdout.trim()).toBe('exec ok');
    expect(ctr('task', 'pause', 'c2').code).toBe(0);
    expect(ctr('task', 'ls').stdout).toMatch(/c2\s+\d+\s+PAUSED/);
    expect(ctr('task', 'resume', 'c2').code).toBe(0);
    expect(ctr('task', 'kill', '-s', 'SIGKILL', 'c2').code).toBe(0);
    expect(ctr('task', 'rm', '-f', 'c2').code).toBe(0);
    expect(ctr('containers', 'rm', 'c2').code).toBe(0);
    expect(ctr('containers', 'ls', '-q').stdout.trim()).toBe('');
  });

  it('-t gives run and task exec a terminal; task metrics reads the cgroup box-runtime made', () => {
    const image = 'docker.io/library/busybox:latest';
    const sockArgs = ['ctr', '-a', `${base}/sock`];
    const run = inTerminal(
      [...sockArgs, 'run', '--rm', '-t', '--runc-binary', runtimeBin, image, 't1', 'sh'],
      'tty; exit 7\n',
    );
    expect(run.stdout).toMatch(/\/dev\/pts\/0\r*\n/);
    expect(run.code).toBe(7);
    expect(ctr('run', '-d', '--runc-binary', runtimeBin, image, 'm1', 'sleep', '100').code).toBe(0);
    const exec = inTerminal(
      [...sockArgs, 'task', 'exec', '-t', '--exec-id', 'x1', 'm1', 'sh'],
      'tty; exit 8\n',
    );
    expect(exec.stdout).toMatch(/\/dev\/pts\/\d+\r*\n/);
    expect(exec.code).toBe(8);
    const metrics = JSON.parse(ctr('task', 'metrics', '--format', 'json', 'm1').stdout);
    expect(metrics.pids.current).toBe(1);
    expect(metrics.memory.usage.usage).toBeGreaterThan(0);
    expect(metrics.cpu.usage.total).toBeGreaterThan(0);
    expect(ctr('task', 'kill', '-s', 'SIGKILL', 'm1').code).toBe(0);
    expect(ctr('task', 'rm', '-f', 'm1').code).toBe(0);
    expect(ctr('containers', 'rm', 'm1').code).toBe(0);
    expect(ctr('containers', 'ls', '-q').stdout.trim()).toBe('');
  });
});
